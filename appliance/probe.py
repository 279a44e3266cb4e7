"""Hardware probe: GPUs via NVML, CPU flags from /proc/cpuinfo, and the compute device chosen from them."""

from __future__ import annotations

import contextlib
import importlib
import logging
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from appliance.env_settings import env_value
from appliance.errors import SettingsError

log = logging.getLogger(__name__)

Device = Literal["cpu", "cuda", "rocm"]
ConfigVariant = Literal["cpu", "gpu"]

CPUINFO = Path("/proc/cpuinfo")
# what CMake adds for a GGML_NATIVE=OFF llama.cpp build on x86-64 (x86-64-v3 minus movbe): SIGILL without them
LLAMA_CPP_REQUIRED_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2")
REPORTED_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512_vnni", "avx_vnni")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "rocm")


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML reports it."""

    index: int
    name: str
    memory_total_mb: int
    memory_free_mb: int


@dataclass(frozen=True)
class NvmlReport:
    """What NVML found: GPUs and driver, or why it found nothing."""

    gpus: tuple[GpuInfo, ...] = ()
    driver_version: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class CpuReport:
    """CPU architecture and the instruction-set flags that matter for llama.cpp and onnxruntime."""

    arch: str
    flags: dict[str, bool]
    llama_cpp_supported: bool | None
    missing_for_llama_cpp: tuple[str, ...] = ()


@dataclass(frozen=True)
class HardwareReport:
    """The probe's result: what was found, the device chosen, why, and anything the operator must know."""

    nvml: NvmlReport
    cpu: CpuReport
    device: Device
    config_variant: ConfigVariant
    reason: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpu_count"] = len(self.nvml.gpus)
        return data


def _text(value: object) -> str:
    """Old pynvml releases return bytes, current ones str."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def probe_nvml() -> NvmlReport:
    """Ask NVML for GPUs; a missing library or any pynvml.NVMLError means no usable GPU."""
    try:
        pynvml = importlib.import_module("pynvml")
    except ImportError:
        return NvmlReport(error="nvidia-ml-py (pynvml) is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return NvmlReport(error=f"NVML unavailable: {exc}")
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(int(pynvml.nvmlDeviceGetCount())):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                GpuInfo(
                    index=index,
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    memory_total_mb=int(memory.total) // (1024 * 1024),
                    memory_free_mb=int(memory.free) // (1024 * 1024),
                )
            )
        return NvmlReport(gpus=tuple(gpus), driver_version=driver)
    except pynvml.NVMLError as exc:
        return NvmlReport(error=f"NVML query failed: {exc}")
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def parse_cpu_flags(cpuinfo_text: str) -> set[str]:
    """The flags of the first processor block (`flags` on x86, `Features` on ARM)."""
    for line in cpuinfo_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def probe_cpu(cpuinfo: Path = CPUINFO, arch: str | None = None) -> CpuReport:
    """CPU flags; llama.cpp support is only judged on x86-64, where the GGML_NATIVE=OFF build needs AVX2."""
    machine = (arch or platform.machine()).lower()
    try:
        flags = parse_cpu_flags(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        log.warning("cannot read %s: %s; CPU flags unknown", cpuinfo, exc.strerror)
        flags = set()
    reported = {name: name in flags for name in REPORTED_FLAGS}
    if machine not in ("x86_64", "amd64"):
        return CpuReport(arch=machine, flags=reported, llama_cpp_supported=None)
    if not flags:
        return CpuReport(arch=machine, flags=reported, llama_cpp_supported=None)
    missing = tuple(name for name in LLAMA_CPP_REQUIRED_FLAGS if name not in flags)
    return CpuReport(arch=machine, flags=reported, llama_cpp_supported=not missing, missing_for_llama_cpp=missing)


def requested_device(flag: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The device asked for and by whom: the --device flag wins over COMPUTE_DEVICE; 'auto' = probe."""
    if flag:
        value, source = flag, "--device"
    else:
        value, source = env_value("COMPUTE_DEVICE", environ) or "auto", "COMPUTE_DEVICE"
    normalised = value.strip().lower()
    if normalised not in DEVICE_CHOICES:
        raise SettingsError(f"{source}={value!r} is not a device; use one of {', '.join(DEVICE_CHOICES)}")
    return normalised, source


def choose_device(
    nvml: NvmlReport, cpu: CpuReport, flag: str | None = None, environ: Mapping[str, str] | None = None
) -> HardwareReport:
    """Combine the findings and the override into one decision with a reason and warnings."""
    wanted, source = requested_device(flag, environ)
    warnings: list[str] = []
    gpus = ", ".join(f"{gpu.name} ({gpu.memory_total_mb} MiB)" for gpu in nvml.gpus)
    device: Device
    if wanted == "auto":
        if nvml.gpus:
            device = "cuda"
            reason = f"NVML found {len(nvml.gpus)} GPU(s): {gpus}; driver {nvml.driver_version}"
        else:
            device = "cpu"
            reason = f"no GPU found ({nvml.error or 'NVML reports 0 devices'})"
    else:
        device = "cpu" if wanted == "cpu" else "cuda" if wanted == "cuda" else "rocm"
        reason = f"{source}={wanted} overrides the probe"
        if device == "rocm":
            reason += " (ROCm uses the GPU config)"
        if device == "cuda" and not nvml.gpus:
            warnings.append(
                f"{source} asks for CUDA but NVML found no GPU ({nvml.error or '0 devices'}); "
                "onnxruntime falls back to the CPU and llama.cpp offloads nothing"
            )
    if cpu.llama_cpp_supported is False:
        warnings.append(
            "this CPU lacks " + ", ".join(cpu.missing_for_llama_cpp) + ": llama.cpp (llama-cpp-python built with "
            "GGML_NATIVE=OFF needs AVX2, FMA, F16C, BMI2) will crash with SIGILL; do not use the 'llama' LLM backend "
            "or llama embeddings here, use nc_texttotext or extractive"
        )
    variant: ConfigVariant = "cpu" if device == "cpu" else "gpu"
    return HardwareReport(
        nvml=nvml, cpu=cpu, device=device, config_variant=variant, reason=reason, warnings=tuple(warnings)
    )


def probe_hardware(
    flag: str | None = None, environ: Mapping[str, str] | None = None, cpuinfo: Path = CPUINFO
) -> HardwareReport:
    """Run the whole probe: NVML, CPU flags, then the device decision."""
    report = choose_device(probe_nvml(), probe_cpu(cpuinfo), flag, environ)
    log.info("compute device %s (config %s): %s", report.device, report.config_variant, report.reason)
    for warning in report.warnings:
        log.warning("%s", warning)
    return report
