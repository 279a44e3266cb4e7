"""The Dockerfile cannot be built here; these checks keep it consistent with the Makefile, pyproject and the tree."""

from __future__ import annotations

import re
import subprocess

from appliance_kit import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
MAKEFILE = (REPO / "Makefile").read_text()
PYPROJECT = (REPO / "pyproject.toml").read_text()


def _make_var(name: str) -> str:
    match = re.search(rf"^{name} :?= (.+)$", MAKEFILE, re.MULTILINE)
    assert match, name
    return match.group(1).strip()


def test_pins_match_the_makefile_and_pyproject() -> None:
    assert f"ARG LLAMA_CPP_VERSION={_make_var('LLAMA_VERSION')}" in DOCKERFILE
    assert f'ARG OFFLINE_MODELS="{_make_var("OFFLINE_MODELS")}"' in DOCKERFILE
    assert f'"llama-cpp-python=={_make_var("LLAMA_VERSION")}"' in PYPROJECT
    # the cuda stage takes the onnxruntime-gpu pin from pyproject with this grep
    grep = subprocess.run(
        ["grep", "-o", "onnxruntime-gpu==[0-9.]*", str(REPO / "pyproject.toml")], capture_output=True, text=True
    )
    assert re.fullmatch(r"onnxruntime-gpu==\d+\.\d+\.\d+\n", grep.stdout)


def test_targets_run_the_entrypoint_with_a_healthcheck_and_the_system_ca_store() -> None:
    stages = re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, re.MULTILINE)
    assert stages[-1] == "cpu" and "cuda" in stages  # the last stage is the default target
    for stage in ("cpu", "cuda"):
        body = DOCKERFILE.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        assert 'ENTRYPOINT ["/app/entrypoint.sh"]' in body
        # AppAPI mounts its own volume: an image VOLUME would only leave anonymous ones behind
        assert "VOLUME" not in body.replace("# no VOLUME", "")
        assert 'CMD ["/app/healthcheck/healthcheck"]' in body
        # HaRP gives a starting container 90 s to turn healthy
        assert "--start-interval=5s" in body
        assert "APP_PERSISTENT_STORAGE=/app/persistent_storage" in body
        # AppAPI installs Nextcloud's CA into the system store; httpx reads it through SSL_CERT_FILE
        assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in body and " ca-certificates " in body
        assert "-e '.[llama]'" in body  # editable: configs/, repairs/, pgsql/ are found next to the packages
        # the OS users are made at build time with their fixed ids, after the package that knows them is installed
        assert body.index("RUN python -m appliance os-users") > body.index("-e '.[llama]'")
    assert "-DGGML_CUDA=on" in DOCKERFILE and 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in DOCKERFILE


def test_files_the_image_runs_exist_and_are_executable() -> None:
    for path in ("entrypoint.sh", "healthcheck/healthcheck"):
        assert (REPO / path).stat().st_mode & 0o111, path
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "persistent_storage" in ignored and ".git" in ignored


def test_both_targets_carry_frpc_for_harp_checked_against_its_sha256() -> None:
    downloads = re.findall(
        r"^FROM scratch AS frp-(\w+)\nADD --checksum=sha256:([0-9a-f]{64}) \\\n\s+(\S+) /frp.tar.gz$",
        DOCKERFILE,
        re.MULTILINE,
    )
    assert {arch: url for arch, _sum, url in downloads} == {
        arch: f"https://github.com/fatedier/frp/releases/download/v0.61.1/frp_0.61.1_linux_{arch}.tar.gz"
        for arch in ("amd64", "arm64")
    }
    assert "FROM frp-${TARGETARCH} AS frp" in DOCKERFILE
    for stage in ("cpu", "cuda"):
        body = DOCKERFILE.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        # on PATH, where appliance/harp_tunnel.py looks for it
        assert "--mount=type=bind,from=frp,source=/frp.tar.gz" in body
        assert "-C /usr/local/bin --strip-components=1 --wildcards '*/frpc'" in body


def test_the_readme_says_which_llm_extras_the_image_lacks() -> None:
    """`make test` installs every extra; the image only `llama`: a `ctransformer` config cannot run in it."""
    images = set(re.findall(r"-e '\.\[([a-z,]+)\]'", DOCKERFILE))
    assert images == {"llama"}, images  # both targets install the same extras
    readme = (REPO / "README.md").read_text()
    for extra in re.findall(r"extra `([a-z]+)`", readme):
        if extra not in images:
            assert f"extra `{extra}`, not in the Docker image" in readme, extra
