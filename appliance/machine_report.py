"""What only the machine knows, for GET /status and `ccb status` alike: supervisord's programs and the hardware."""

from __future__ import annotations

import os
import xmlrpc.client
from collections.abc import Mapping
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from appliance.cpu_limit import cpu_limit
from appliance.probe import probe_cpu
from appliance.storage import StorageLayout

# written to launch.env by `prepare`, so every program supervisord starts knows the probe's decision
DEVICE_VARIABLE = "CCB_COMPUTE_DEVICE"
DEVICE_REASON_VARIABLE = "CCB_COMPUTE_DEVICE_REASON"


def program_states(layout: StorageLayout) -> dict[str, str] | str:
    """{program: state} from supervisord's socket, or why it could not be asked. A program this start does not use
    (never started and not autostarted: frpc without HaRP, postgres with EXTERNAL_DB) is left out."""
    socket = layout.run_dir / "supervisor.sock"
    transport = SupervisorTransport(None, None, f"unix://{socket}")
    try:
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        infos = cast(list[dict[str, Any]], proxy.supervisor.getAllProcessInfo())
    except (OSError, xmlrpc.client.Error) as exc:
        return f"supervisord does not answer on {socket} ({exc})"
    finally:
        transport.close()
    return {
        info["name"]: str(info["statename"])
        for info in infos
        if not (info["statename"] == "STOPPED" and info.get("start", 0) == 0)
    }


def hardware_report(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compute device the probe chose at start (None when started without `prepare`), the CPU's flags and the
    CPUs a container's quota or affinity mask leaves (what thread counts of 0 use)."""
    env = os.environ if environ is None else environ
    cpu = probe_cpu()
    limit = cpu_limit()
    return {
        "device": env.get(DEVICE_VARIABLE) or None,
        "device_reason": env.get(DEVICE_REASON_VARIABLE) or None,
        "arch": cpu.arch,
        "avx2": cpu.flags.get("avx2"),
        "llama_cpp": cpu.llama_cpp_supported,
        "cpus": limit.cpus if limit is not None else os.cpu_count(),
        "cpu_limit": limit.reason if limit is not None else None,
    }


def machine_report(layout: StorageLayout) -> dict[str, Any]:
    """`programs` and `hardware` of GET /status (blocking: a socket call and /proc/cpuinfo)."""
    return {"programs": program_states(layout), "hardware": hardware_report()}
