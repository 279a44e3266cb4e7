"""Hardware probe: NVML present / absent / failing (the pynvml library faked, not the probe), CPU flags, overrides."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from appliance_kit import FAKE_NVML_DIR, clean_env, run_cli

from appliance.errors import SettingsError
from appliance.probe import choose_device, parse_cpu_flags, probe_cpu, probe_hardware, probe_nvml

TWO_GPUS = json.dumps(
    [{"name": "NVIDIA L4", "total_mb": 23034, "free_mb": 22000}, {"name": "NVIDIA A2", "total_mb": 15360, "free_mb": 1}]
)
X86_AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2 popcnt\n\n"
X86_NO_AVX2 = "processor\t: 0\nflags\t\t: fpu sse sse2 sse4_2 avx popcnt\n\nprocessor\t: 1\nflags\t\t: fpu\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes crc32 atomics\n"


@pytest.fixture
def fake_pynvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("pynvml", FAKE_NVML_DIR / "pynvml.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # registered before it runs: its dataclasses look their module up in sys.modules
    monkeypatch.setitem(sys.modules, "pynvml", module)
    spec.loader.exec_module(module)
    yield module


def test_real_pynvml_without_a_gpu_means_no_gpu() -> None:
    # this machine has nvidia-ml-py but no libnvidia-ml.so: nvmlInit raises NVMLError_LibraryNotFound
    report = probe_nvml()
    assert report.gpus == ()
    assert report.error == "NVML unavailable: NVML Shared Library Not Found"


def test_missing_pynvml_package_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    assert probe_nvml().error == "nvidia-ml-py (pynvml) is not installed"


def test_gpus_found_by_nvml(fake_pynvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NVML_GPUS", TWO_GPUS)
    report = probe_nvml()
    assert report.error is None
    assert report.driver_version == "550.54.15"
    assert [(gpu.index, gpu.name, gpu.memory_total_mb, gpu.memory_free_mb) for gpu in report.gpus] == [
        (0, "NVIDIA L4", 23034, 22000),
        (1, "NVIDIA A2", 15360, 1),
    ]
    assert fake_pynvml._state["initialised"] is False  # nvmlShutdown was called


def test_nvml_error_after_init_means_no_gpu(fake_pynvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NVML_GPUS", TWO_GPUS)
    monkeypatch.setenv("FAKE_NVML_FAIL", "count")
    report = probe_nvml()
    assert report.gpus == ()
    assert report.error == "NVML query failed: Unknown Error"


def test_auto_picks_cuda_when_nvml_finds_a_gpu(fake_pynvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NVML_GPUS", TWO_GPUS)
    report = probe_hardware(environ={})
    assert (report.device, report.config_variant) == ("cuda", "gpu")
    assert report.reason == ("NVML found 2 GPU(s): NVIDIA L4 (23034 MiB), NVIDIA A2 (15360 MiB); driver 550.54.15")


def test_auto_picks_cpu_without_gpu(fake_pynvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NVML_FAIL", "init")
    report = probe_hardware(environ={})
    assert (report.device, report.config_variant) == ("cpu", "cpu")
    assert report.reason == "no GPU found (NVML unavailable: NVML Shared Library Not Found)"


@pytest.mark.parametrize(
    ("flag", "environ", "device", "variant", "reason"),
    [
        (None, {"COMPUTE_DEVICE": "CPU"}, "cpu", "cpu", "COMPUTE_DEVICE=cpu overrides the probe"),
        (
            None,
            {"COMPUTE_DEVICE": "ROCM"},
            "rocm",
            "gpu",
            "COMPUTE_DEVICE=rocm overrides the probe (ROCm uses the GPU config)",
        ),
        ("cpu", {"COMPUTE_DEVICE": "CUDA"}, "cpu", "cpu", "--device=cpu overrides the probe"),
        (
            "auto",
            {"COMPUTE_DEVICE": "CPU"},
            "cuda",
            "gpu",
            "NVML found 2 GPU(s): NVIDIA L4 (23034 MiB), NVIDIA A2 (15360 MiB); driver 550.54.15",
        ),
    ],
)
def test_overrides(
    fake_pynvml: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    environ: dict[str, str],
    device: str,
    variant: str,
    reason: str,
) -> None:
    monkeypatch.setenv("FAKE_NVML_GPUS", TWO_GPUS)
    report = probe_hardware(flag, environ)
    assert (report.device, report.config_variant, report.reason) == (device, variant, reason)


def test_cuda_requested_without_gpu_warns(fake_pynvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NVML_FAIL", "init")
    report = probe_hardware("cuda", {})
    assert (report.device, report.config_variant) == ("cuda", "gpu")
    assert report.warnings == (
        "--device asks for CUDA but NVML found no GPU (NVML unavailable: NVML Shared Library Not Found); "
        "onnxruntime falls back to the CPU and llama.cpp offloads nothing",
    )


def test_bad_compute_device_names_the_variable_and_the_choices() -> None:
    with pytest.raises(SettingsError) as excinfo:
        probe_hardware(None, {"COMPUTE_DEVICE": "TPU"})
    assert str(excinfo.value) == "COMPUTE_DEVICE='TPU' is not a device; use one of auto, cpu, cuda, rocm"


def test_cpu_flags_parsing() -> None:
    assert parse_cpu_flags(X86_AVX2) == {"fpu", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "popcnt"}
    assert parse_cpu_flags(X86_NO_AVX2) == {"fpu", "sse", "sse2", "sse4_2", "avx", "popcnt"}  # first block only
    assert parse_cpu_flags(ARM) == {"fp", "asimd", "evtstrm", "aes", "crc32", "atomics"}
    assert parse_cpu_flags("") == set()


def test_avx2_cpu_can_run_llama_cpp(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(X86_AVX2)
    report = probe_cpu(tmp_path / "cpuinfo", arch="x86_64")
    assert report.llama_cpp_supported is True
    assert report.flags["avx2"] is True and report.flags["avx512f"] is False


def test_cpu_without_avx2_warns_loudly(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(X86_NO_AVX2)
    cpu = probe_cpu(tmp_path / "cpuinfo", arch="x86_64")
    assert (cpu.llama_cpp_supported, cpu.missing_for_llama_cpp) == (False, ("avx2", "fma", "f16c", "bmi2"))
    report = choose_device(probe_nvml(), cpu, "cpu", {})
    assert report.warnings == (
        "this CPU lacks avx2, fma, f16c, bmi2: llama.cpp (llama-cpp-python built with GGML_NATIVE=OFF needs AVX2, "
        "FMA, F16C, BMI2) will crash with SIGILL; do not use the 'llama' LLM backend or llama embeddings here, "
        "use nc_texttotext or extractive",
    )


def test_arm_cpu_is_not_judged(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(ARM)
    report = probe_cpu(tmp_path / "cpuinfo", arch="aarch64")
    assert (report.arch, report.llama_cpp_supported, report.missing_for_llama_cpp) == ("aarch64", None, ())
    assert not any(report.flags.values())


def test_unreadable_cpuinfo_is_unknown(tmp_path: Path) -> None:
    assert probe_cpu(tmp_path / "missing", arch="x86_64").llama_cpp_supported is None


def test_probe_command_prints_json_with_a_fake_nvml_library(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PYTHONPATH=str(FAKE_NVML_DIR), FAKE_NVML_GPUS=TWO_GPUS)
    result = run_cli("probe", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["gpu_count"], report["device"], report["config_variant"]) == (2, "cuda", "gpu")
    assert report["nvml"]["gpus"][0] == {
        "index": 0,
        "name": "NVIDIA L4",
        "memory_total_mb": 23034,
        "memory_free_mb": 22000,
    }


def test_probe_command_without_nvml(tmp_path: Path) -> None:
    result = run_cli("probe", env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["gpu_count"], report["device"]) == (0, "cpu")
    assert report["nvml"]["error"] == "NVML unavailable: NVML Shared Library Not Found"
