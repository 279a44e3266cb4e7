"""A stand-in for nvidia-ml-py's `pynvml` module: same names, same error classes, GPUs taken from FAKE_NVML_GPUS.

FAKE_NVML_GPUS: JSON list of {"name", "total_mb", "free_mb"}; FAKE_NVML_FAIL: "init" (library not found) or "count"
(a query fails after init). Put this directory first on PYTHONPATH, or load it into sys.modules["pynvml"].
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_UNKNOWN = 999
NVML_ERROR_LIBRARY_NOT_FOUND = 12
_state = {"initialised": False}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {12: "NVML Shared Library Not Found", 1: "Uninitialized", 999: "Unknown Error"}.get(self.value, "?")


class NVMLError_LibraryNotFound(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_LIBRARY_NOT_FOUND)


class NVMLError_Unknown(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_UNKNOWN)


@dataclass
class c_nvmlMemory_t:
    total: int
    free: int
    used: int


def _gpus() -> list[dict[str, object]]:
    return list(json.loads(os.environ.get("FAKE_NVML_GPUS", "[]")))


def _check() -> None:
    if not _state["initialised"]:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)


def nvmlInit() -> None:
    if os.environ.get("FAKE_NVML_FAIL") == "init":
        raise NVMLError_LibraryNotFound()
    _state["initialised"] = True


def nvmlShutdown() -> None:
    _check()
    _state["initialised"] = False


def nvmlSystemGetDriverVersion() -> str:
    _check()
    return "550.54.15"


def nvmlDeviceGetCount() -> int:
    _check()
    if os.environ.get("FAKE_NVML_FAIL") == "count":
        raise NVMLError_Unknown()
    return len(_gpus())


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    _check()
    return index


def nvmlDeviceGetName(handle: int) -> str:
    _check()
    return str(_gpus()[handle]["name"])


def nvmlDeviceGetMemoryInfo(handle: int) -> c_nvmlMemory_t:
    _check()
    gpu = _gpus()[handle]
    total, free = int(str(gpu["total_mb"])) << 20, int(str(gpu["free_mb"])) << 20
    return c_nvmlMemory_t(total=total, free=free, used=total - free)
