"""Config selection: the cpu/gpu template copied at the first start, an existing config kept (or following its changed
template), reset, and the file's modes. Its validation is in test_appliance_config_validation.py."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
from appliance_kit import REPO, clean_env, run_cli

from appliance import config_files
from appliance.config import load_config
from appliance.config_files import config_path, ensure_config
from appliance.doctor import _config_defaults
from appliance.errors import ConfigError
from appliance.probe import ConfigVariant
from appliance.storage import StorageLayout

CPU = (REPO / "configs" / "config.cpu.yaml").read_text()
GPU = (REPO / "configs" / "config.gpu.yaml").read_text()


def test_shipped_configs_load_with_upstream_semantics() -> None:
    cpu = load_config(REPO / "configs" / "config.cpu.yaml", environ={})
    gpu = load_config(REPO / "configs" / "config.gpu.yaml", environ={})
    assert (cpu.vectordb_backend, cpu.llm_backend, cpu.embedding.runtime) == ("pgvector", "nc_texttotext", "onnx")
    assert cpu.embedding.onnx.providers == ["CPUExecutionProvider"]
    assert gpu.embedding.onnx.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert gpu.llm_backend == "nc_texttotext"


@pytest.mark.parametrize(("variant", "expected"), [("cpu", CPU), ("gpu", GPU)])
def test_first_start_copies_the_template_for_the_hardware(tmp_path: Path, variant: str, expected: str) -> None:
    target = tmp_path / "config.yaml"
    choice = ensure_config(target, variant)  # type: ignore[arg-type]
    assert choice.copied and choice.template.name == f"config.{variant}.yaml"
    assert target.read_text() == expected


def test_existing_config_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("debug: true\n")
    choice = ensure_config(target, "gpu")
    assert not choice.copied
    assert target.read_text() == "debug: true\n"


def test_reset_recopies_and_keeps_a_backup(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("debug: true\n")
    choice = ensure_config(target, "cpu", reset=True)
    assert choice.copied and choice.backup == tmp_path / "config.yaml.bak"
    assert target.read_text() == CPU
    assert (tmp_path / "config.yaml.bak").read_text() == "debug: true\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_config_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    ensure_config(target, "cpu")
    assert _mode(target) == 0o600
    # one written by an earlier version (0644) is made private at the next start, and so is a reset's backup
    target.chmod(0o644)
    ensure_config(target, "cpu")
    assert _mode(target) == 0o600
    target.chmod(0o644)
    (tmp_path / "config.yaml.tmp").write_text("left by a crash\n")
    (tmp_path / "config.yaml.tmp").chmod(0o644)
    ensure_config(target, "cpu", reset=True)
    assert _mode(target) == 0o600 and _mode(tmp_path / "config.yaml.bak") == 0o600


def test_the_logs_dir_is_private_and_a_symlink_is_not_followed(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path / "storage")
    layout.ensure()
    assert _mode(layout.log_dir) == 0o700
    layout.log_dir.chmod(0o755)
    layout.ensure()
    assert _mode(layout.log_dir) == 0o700
    # a logs dir replaced by a link: the start goes on and the link's target keeps its mode
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    linked = StorageLayout(tmp_path / "linked")
    linked.root.mkdir()
    linked.log_dir.symlink_to(elsewhere, target_is_directory=True)
    linked.ensure()
    assert _mode(elsewhere) == 0o755


def test_cc_config_path_is_honoured(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    assert config_path(layout, {}) == tmp_path / "config.yaml"
    assert config_path(layout, {"CC_CONFIG_PATH": str(tmp_path / "other.yaml")}) == tmp_path / "other.yaml"


def test_missing_template_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        ensure_config(tmp_path / "config.yaml", "gpu", configs_dir=tmp_path)
    assert (
        str(excinfo.value)
        == f"{tmp_path}/config.gpu.yaml: the shipped config template is missing; reinstall the appliance"
    )


OLD_TEMPLATE = "retrieval:\n  ef_search: 200  # HNSW width\n  rrf_k: 60\nllm:\n  nc_texttotext: {}\n"
NEW_TEMPLATE = (
    "retrieval:\n  ef_search: auto  # HNSW width\n  rrf_k: 60\n  cross_lingual:\n    model: m\n    weight: 2.0\n"
    "llm:\n  nc_texttotext: {}\n"
)


def _copied_from_old_template(tmp_path: Path) -> tuple[Path, Path]:
    """A config copied from OLD_TEMPLATE; the template then replaced by NEW_TEMPLATE (an upgrade)."""
    templates, target = tmp_path / "configs", tmp_path / "storage" / "config.yaml"
    templates.mkdir()
    (templates / "config.cpu.yaml").write_text(OLD_TEMPLATE)
    assert ensure_config(target, "cpu", configs_dir=templates).copied
    (templates / "config.cpu.yaml").write_text(NEW_TEMPLATE)
    return templates, target


def test_an_untouched_config_follows_a_changed_template(tmp_path: Path) -> None:
    templates, target = _copied_from_old_template(tmp_path)
    # a reset's backup, which may hold the admin's edits, is left alone
    target.with_name("config.yaml.bak").write_text("debug: true\n")
    choice = ensure_config(target, "cpu", configs_dir=templates)
    assert choice.copied and choice.followed and choice.backup == target.with_name("config.yaml.previous")
    assert target.with_name("config.yaml.bak").read_text() == "debug: true\n"
    assert target.read_text() == NEW_TEMPLATE
    assert choice.backup.read_text() == OLD_TEMPLATE
    # compared with the new template from now on: nothing changes at the next start
    assert not ensure_config(target, "cpu", configs_dir=templates).copied
    assert _mode(target.with_name("config.yaml.shipped")) == 0o600


def test_an_edited_config_is_kept_and_the_defaults_changed_since_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    templates, target = _copied_from_old_template(tmp_path)
    edited = OLD_TEMPLATE.replace("nc_texttotext: {}", "openai:\n    api_key: sk-secret-1234")
    target.write_text(edited)
    choice = ensure_config(target, "cpu", configs_dir=templates)
    assert not choice.copied and target.read_text() == edited
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (
        "it lacks these new defaults: retrieval.ef_search: 200 -> auto; retrieval.cross_lingual: (not set) ->"
        " {model: m, weight: 2.0}. Copy the ones you want from configs/config.cpu.yaml, or re-copy it with"
        " --reset-config" in warning
    )
    # the template's values only: the config's own (removed llm.nc_texttotext, its key) are not listed or shown
    assert "sk-secret" not in warning and "nc_texttotext" not in warning


def test_ccb_doctor_warns_of_the_new_defaults_an_edited_config_lacks(tmp_path: Path) -> None:
    templates, target = _copied_from_old_template(tmp_path)
    assert _config_defaults(target, templates) == []  # untouched: start-up will follow the template
    target.write_text(OLD_TEMPLATE + "debug: true\n")
    [check] = _config_defaults(target, templates)
    assert (check.name, check.outcome) == ("config", "warn")
    assert check.detail == (
        f"{target} lacks 2 new default(s) of configs/config.cpu.yaml: retrieval.ef_search: 200 -> auto;"
        " retrieval.cross_lingual: (not set) -> {model: m, weight: 2.0}"
    )
    assert "python -m appliance config --reset" in check.fix
    target.with_name("config.yaml.shipped").unlink()
    assert _config_defaults(target, templates) == []  # no record: nothing to compare with


def test_an_edited_config_holding_the_new_defaults_is_compared_with_the_new_template(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    templates, target = _copied_from_old_template(tmp_path)
    adopted = NEW_TEMPLATE + "debug: true\n"
    target.write_text(adopted)
    assert not ensure_config(target, "cpu", configs_dir=templates).copied
    assert target.read_text() == adopted and not [r for r in caplog.records if r.levelname == "WARNING"]
    # the next template changes only rrf_k: the edited config is kept, and only that default is named
    (templates / "config.cpu.yaml").write_text(NEW_TEMPLATE.replace("rrf_k: 60", "rrf_k: 40"))
    ensure_config(target, "cpu", configs_dir=templates)
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "it lacks these new defaults: retrieval.rrf_k: 60 -> 40. Copy" in warning


def test_a_config_without_a_record_or_from_another_template_is_kept(tmp_path: Path) -> None:
    templates, target = _copied_from_old_template(tmp_path)
    # copied from the GPU template (the machine's hardware changed since): kept, --reset-config is the way
    (templates / "config.gpu.yaml").write_text(OLD_TEMPLATE)
    assert not ensure_config(target, "gpu", configs_dir=templates).copied
    assert target.read_text() == OLD_TEMPLATE
    # copied before records were kept (or brought in through CC_CONFIG_PATH): nothing to compare it with
    target.with_name("config.yaml.shipped").unlink()
    assert not ensure_config(target, "cpu", configs_dir=templates).copied
    assert target.read_text() == OLD_TEMPLATE
    # unless it is the current template itself: then it is recorded, and follows the next one
    target.write_text(NEW_TEMPLATE)
    assert not ensure_config(target, "cpu", configs_dir=templates).copied
    (templates / "config.cpu.yaml").write_text(NEW_TEMPLATE.replace("rrf_k: 60", "rrf_k: 40"))
    assert ensure_config(target, "cpu", configs_dir=templates).followed


HARDWARE_CHANGES: list[tuple[ConfigVariant, ConfigVariant]] = [("cpu", "gpu"), ("gpu", "cpu")]


@pytest.mark.parametrize(("copied", "now"), HARDWARE_CHANGES)
def test_a_config_copied_for_other_hardware_is_kept_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, copied: ConfigVariant, now: ConfigVariant
) -> None:
    # a GPU added (or gone) since the first start: the old providers and n_gpu_layers stay in effect
    target = tmp_path / "config.yaml"
    ensure_config(target, copied)
    caplog.set_level("INFO", logger="appliance.config_files")
    assert not ensure_config(target, now).copied
    assert target.read_text() == (CPU if copied == "cpu" else GPU)
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == (
        f"keeping {target}, copied from config.{copied}.yaml, though this start picks config.{now}.yaml for the"
        f" hardware (their onnx providers and n_gpu_layers differ): start once with --reset-config to use"
        f" config.{now}.yaml (the old file is kept as .bak), or set COMPUTE_DEVICE to keep the old choice"
    )


def test_an_untouched_config_from_before_records_follows_the_template(tmp_path: Path) -> None:
    templates, target = _copied_from_old_template(tmp_path)
    target.with_name("config.yaml.shipped").unlink()
    listing = templates / "templates-before-records.sha256"
    listing.write_text(f"# comment\n{hashlib.sha256(OLD_TEMPLATE.encode()).hexdigest()}  config.gpu.yaml\n")
    assert not ensure_config(target, "cpu", configs_dir=templates).copied  # listed for the other template
    listing.write_text(f"{hashlib.sha256(OLD_TEMPLATE.encode()).hexdigest()}  config.cpu.yaml\n")
    assert ensure_config(target, "cpu", configs_dir=templates).followed
    assert target.read_text() == NEW_TEMPLATE and target.with_name("config.yaml.previous").read_text() == OLD_TEMPLATE


def test_a_config_mounted_read_only_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CC_CONFIG_PATH may name a file mounted read-only (deploy/k8s): it can be neither replaced nor recorded."""
    templates, target = _copied_from_old_template(tmp_path)

    def read_only(*args: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    choice = ensure_config(target, "cpu", configs_dir=templates)
    assert not choice.copied and target.read_text() == OLD_TEMPLATE
    monkeypatch.undo()
    target.with_name("config.yaml.shipped").unlink()
    target.write_text(NEW_TEMPLATE)  # the current template, without a record: recorded when possible
    monkeypatch.setattr(config_files, "write_record", read_only)
    assert not ensure_config(target, "cpu", configs_dir=templates).copied
    assert not target.with_name("config.yaml.shipped").exists()


def test_the_shipped_list_of_templates_before_records_is_well_formed() -> None:
    lines = (REPO / "configs" / "templates-before-records.sha256").read_text().splitlines()
    listed = [line for line in lines if not line.startswith("#")]
    assert len(listed) >= 40
    assert all(re.fullmatch(r"[0-9a-f]{64}  config\.(cpu|gpu)\.yaml", line) for line in listed)


@pytest.mark.parametrize(("device", "expected"), [("cpu", CPU), ("cuda", GPU), ("rocm", GPU)])
def test_config_command_copies_for_the_device(tmp_path: Path, device: str, expected: str) -> None:
    result = run_cli("config", "--device", device, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "config.yaml").read_text() == expected
    assert result.stdout.startswith(
        f"copied config.{'cpu' if device == 'cpu' else 'gpu'}.yaml to {tmp_path}/config.yaml"
    )


def test_the_cli_device_option_is_read_in_any_case(tmp_path: Path) -> None:
    result = run_cli("config", "--device", "CUDA", env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "config.yaml").read_text() == GPU


def test_config_command_reset(tmp_path: Path) -> None:
    env = clean_env(tmp_path, COMPUTE_DEVICE="CUDA")
    assert run_cli("config", "--device", "cpu", env=env).returncode == 0
    kept = run_cli("config", env=env)
    assert kept.stdout.startswith(f"kept the existing {tmp_path}/config.yaml")
    assert (tmp_path / "config.yaml").read_text() == CPU
    reset = run_cli("config", "--reset", env=env)  # COMPUTE_DEVICE=CUDA now decides
    assert reset.returncode == 0, reset.stderr
    assert (tmp_path / "config.yaml").read_text() == GPU
    assert (tmp_path / "config.yaml.bak").read_text() == CPU
