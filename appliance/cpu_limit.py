"""The CPUs this process may really use: a container's CPU quota and its affinity mask.

`os.cpu_count()`, onnxruntime's and llama.cpp's "one thread per core" count the host's CPUs. With
`docker run --cpus=2` (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`) or `--cpuset-cpus` on a 64-CPU host, 64 threads
would share two CPUs' time: each waits for the slowest, and the quota throttles them all, batch after batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

# what a container sees as its own cgroup (Docker and Kubernetes mount it there)
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CpuLimit:
    """Fewer CPUs than the machine has: how many, and what limits them."""

    cpus: int
    reason: str


def cgroup_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs' worth of time per period the cgroup may use, or None without a quota (or without cgroup files)."""
    try:
        fields = (root / "cpu.max").read_text(encoding="ascii").split()  # v2: "200000 100000" or "max 100000"
    except OSError:
        fields = []
    if fields:
        if fields[0] == "max" or len(fields) < 2:
            return None
        quota_text, period_text = fields[0], fields[1]
    else:
        try:
            quota_text = (root / "cpu" / "cpu.cfs_quota_us").read_text(encoding="ascii")  # v1: -1 without a quota
            period_text = (root / "cpu" / "cpu.cfs_period_us").read_text(encoding="ascii")
        except OSError:
            return None
    try:
        quota, period = int(quota_text), int(period_text)
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cpu_limit(
    root: Path = CGROUP_ROOT, affinity: int | None = None, machine_cpus: int | None = None
) -> CpuLimit | None:
    """The CPUs a quota or an affinity mask leaves this process when fewer than the machine's, else None."""
    machine = machine_cpus or os.cpu_count() or 1
    allowed = len(os.sched_getaffinity(0)) if affinity is None else affinity
    quota = cgroup_quota(root)
    # a quota of 1.5 CPUs keeps two threads busy part of the time: round up
    by_quota = max(1, math.ceil(quota)) if quota is not None else machine
    cpus = min(allowed, by_quota, machine)
    if cpus >= machine:
        return None
    if by_quota <= allowed:
        return CpuLimit(cpus, f"a cgroup CPU quota of {quota:g} CPUs on a {machine}-CPU machine")
    return CpuLimit(cpus, f"an affinity mask of {allowed} of the machine's {machine} CPUs")


def runtime_threads(configured: int) -> int:
    """Threads for a runtime whose config says `configured` (0 = one per core): the configured number, else the CPUs
    a limit leaves, else 0 (the runtime's own default, right on a machine without limits)."""
    if configured > 0:
        return configured
    limit = cpu_limit()
    return limit.cpus if limit is not None else 0
