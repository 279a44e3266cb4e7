"""Every repair rule: version.info missing / current / older, repair.info, partial resume, failure, genrepair."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from appliance_kit import PYTHON, REPO, clean_env, run_cli

from appliance.errors import RepairError
from appliance.repairs import discover_steps, generate_step, plan_repairs, run_repairs, version_number
from appliance.storage import StorageLayout

STEP = """
from appliance.repairs import RepairContext


def run(context: RepairContext) -> None:
    root = context.layout.root
    if (root / "fail-{name}").exists():
        raise OSError("disk on fire")
    with (root / "steps.log").open("a") as log:
        log.write("{name} previous=%s\\n" % context.previous_version)
"""
NAMES = (
    "repair3009_date20250101000000.py",
    "repair4000_date20260101000000.py",
    "repair4000_date20260301000000.py",
    "repair4001_date20260201000000.py",
    "repair4002_date20260401000000.py",
)


@pytest.fixture
def layout(tmp_path: Path) -> StorageLayout:
    layout = StorageLayout(tmp_path / "storage")
    layout.ensure()
    return layout


@pytest.fixture
def steps_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "repairs"
    directory.mkdir()
    for name in NAMES:
        (directory / name).write_text(STEP.format(name=name.split("_date")[0] + "@" + name[-17:-11]))
    (directory / "README.md").write_text("not a step")
    return directory


def ran(layout: StorageLayout) -> list[str]:
    log = layout.root / "steps.log"
    return log.read_text().splitlines() if log.exists() else []


def test_version_numbering() -> None:
    assert [version_number(v) for v in ("4.0.0", "4.1.2", "10.12.0", "5.4.0-beta1")] == [4000, 4001, 10012, 5004]
    with pytest.raises(RepairError) as excinfo:
        version_number("four")
    assert str(excinfo.value) == "version 'four' is not MAJOR.MINOR[.PATCH]; set APP_VERSION to e.g. 4.0.0"


def test_steps_are_ordered_by_version_then_date(steps_dir: Path) -> None:
    assert [step.name for step in discover_steps(steps_dir)] == list(NAMES)


def test_missing_version_info_runs_every_step_up_to_app_version(layout: StorageLayout, steps_dir: Path) -> None:
    plan = run_repairs(layout, "4.1.0", steps_dir)
    assert ran(layout) == [
        "repair3009@202501 previous=None",
        "repair4000@202601 previous=None",
        "repair4000@202603 previous=None",
        "repair4001@202602 previous=None",
    ]
    assert plan.skipped == (("repair4002_date20260401000000.py", "introduced after APP_VERSION 4.1.0"),)
    assert layout.version_file.read_text() == "4.1.0+\n"
    assert not layout.partial_repair_file.exists()


def test_version_info_equal_to_app_version_runs_nothing(layout: StorageLayout, steps_dir: Path) -> None:
    layout.version_file.write_text("4.2.0+\n")
    plan = run_repairs(layout, "4.2.0", steps_dir)
    assert plan.to_run == ()
    assert ran(layout) == []
    assert layout.version_file.read_text() == "4.2.0+\n"


def test_older_version_runs_the_newer_steps_in_ascending_order(layout: StorageLayout, steps_dir: Path) -> None:
    layout.version_file.write_text("4.0.0+")
    run_repairs(layout, "4.2.0", steps_dir)
    assert ran(layout) == ["repair4001@202602 previous=4000", "repair4002@202604 previous=4000"]
    assert layout.version_file.read_text() == "4.2.0+\n"


def test_a_patch_release_runs_the_step_it_adds_to_its_minor(layout: StorageLayout, steps_dir: Path) -> None:
    # 4.0.1 shipped repair4000@202601; 4.0.2 adds repair4000@202603, named by its minor like every 4.0.x step
    added = steps_dir / "repair4000_date20260301000000.py"
    text = added.read_text()
    added.unlink()
    run_repairs(layout, "4.0.1", steps_dir)
    added.write_text(text)
    plan = run_repairs(layout, "4.0.2", steps_dir)
    assert [step.name for step in plan.to_run] == ["repair4000_date20260301000000.py"]
    assert ran(layout) == [
        "repair3009@202501 previous=None",
        "repair4000@202601 previous=None",
        "repair4000@202603 previous=4000",
    ]
    assert layout.version_file.read_text() == "4.0.2+\n"
    assert run_repairs(layout, "4.0.2", steps_dir).to_run == ()  # and once only


def test_version_without_plus_reruns_that_versions_steps(layout: StorageLayout, steps_dir: Path) -> None:
    # "4.0.0" without "+" = the repairs of 4.0.0 did not finish
    layout.version_file.write_text("4.0.0\n")
    run_repairs(layout, "4.1.0", steps_dir)
    assert [line.split()[0] for line in ran(layout)] == ["repair4000@202601", "repair4000@202603", "repair4001@202602"]


def test_repair_info_skips_listed_files(layout: StorageLayout, steps_dir: Path) -> None:
    layout.repair_skip_file.write_text(
        "# skip these\nrepair4000_date20260101000000.py\n\nrepair4001_date20260201000000\n"
    )
    plan = run_repairs(layout, "4.1.0", steps_dir)
    assert [line.split()[0] for line in ran(layout)] == ["repair3009@202501", "repair4000@202603"]
    assert ("repair4000_date20260101000000.py", "listed in repair.info") in plan.skipped
    assert ("repair4001_date20260201000000.py", "listed in repair.info") in plan.skipped


def test_failing_step_aborts_with_a_clear_message_and_resumes_later(layout: StorageLayout, steps_dir: Path) -> None:
    (layout.root / "fail-repair4000@202603").touch()
    with pytest.raises(RepairError) as excinfo:
        run_repairs(layout, "4.1.0", steps_dir)
    assert str(excinfo.value) == (
        "repair step repair4000_date20260301000000.py failed: OSError: disk on fire. Start-up is aborted. "
        f"Fix the cause and start again (finished steps are recorded in {layout.partial_repair_file} and will not "
        f"run twice), or skip the step by adding the line 'repair4000_date20260301000000.py' to "
        f"{layout.repair_skip_file}"
    )
    assert [line.split()[0] for line in ran(layout)] == ["repair3009@202501", "repair4000@202601"]
    assert (
        layout.partial_repair_file.read_text() == "repair3009_date20250101000000.py\nrepair4000_date20260101000000.py\n"
    )
    assert not layout.version_file.exists()

    (layout.root / "fail-repair4000@202603").unlink()
    plan = run_repairs(layout, "4.1.0", steps_dir)
    assert [line.split()[0] for line in ran(layout)] == [
        "repair3009@202501",
        "repair4000@202601",
        "repair4000@202603",
        "repair4001@202602",
    ]
    assert [step.name for step in plan.to_run] == [
        "repair4000_date20260301000000.py",
        "repair4001_date20260201000000.py",
    ]
    assert layout.version_file.read_text() == "4.1.0+\n"
    assert not layout.partial_repair_file.exists()


def test_failing_step_can_be_skipped_with_repair_info(layout: StorageLayout, steps_dir: Path) -> None:
    (layout.root / "fail-repair4001@202602").touch()
    with pytest.raises(RepairError):
        run_repairs(layout, "4.1.0", steps_dir)
    layout.repair_skip_file.write_text("repair4001_date20260201000000.py\n")
    run_repairs(layout, "4.1.0", steps_dir)
    assert layout.version_file.read_text() == "4.1.0+\n"


def test_newer_version_info_is_left_alone(layout: StorageLayout, steps_dir: Path) -> None:
    layout.version_file.write_text("5.0.0+\n")
    assert run_repairs(layout, "4.1.0", steps_dir).to_run == ()
    assert layout.version_file.read_text() == "5.0.0+\n"


def test_garbage_version_info_is_an_error(layout: StorageLayout, steps_dir: Path) -> None:
    layout.version_file.write_text("banana\n")
    with pytest.raises(RepairError) as excinfo:
        plan_repairs(layout, "4.1.0", steps_dir)
    assert str(excinfo.value) == (
        f"{layout.version_file} holds 'banana', not a version such as 4.0.0+; "
        "delete the file to run every repair step again"
    )


def test_misnamed_step_file_is_an_error(layout: StorageLayout, steps_dir: Path) -> None:
    (steps_dir / "repair4000_fix.py").write_text("")
    with pytest.raises(RepairError) as excinfo:
        discover_steps(steps_dir)
    assert str(excinfo.value) == (
        f"{steps_dir}/repair4000_fix.py: a repair step must be named repairMMMmmm_dateYYYYMMDDHHMMSS.py; "
        "create steps with 'python -m appliance genrepair'"
    )


def test_step_without_run_is_an_error(layout: StorageLayout, tmp_path: Path) -> None:
    directory = tmp_path / "empty-steps"
    directory.mkdir()
    (directory / "repair4000_date20260101000000.py").write_text("X = 1\n")
    with pytest.raises(RepairError, match=r"must define run\(context: RepairContext\) -> None"):
        run_repairs(layout, "4.0.0", directory)


def test_genrepair_file_name_and_template(tmp_path: Path) -> None:
    path = generate_step("4.3.1", "Fix the thing.", tmp_path, now=datetime(2026, 12, 1, 9, 30, 5, tzinfo=UTC))
    assert path == tmp_path / "repair4003_date20261201093005.py"
    assert path.read_text().startswith('"""Fix the thing."""')
    with pytest.raises(RepairError, match="exists already"):
        generate_step("4.3.1", "Again.", tmp_path, now=datetime(2026, 12, 1, 9, 30, 5, tzinfo=UTC))


def test_genrepair_command_uses_app_version(tmp_path: Path) -> None:
    result = run_cli("genrepair", "--repairs-dir", str(tmp_path), env=clean_env(tmp_path, APP_VERSION="12.7.0"))
    assert result.returncode == 0, result.stderr
    created = Path(result.stdout.strip())
    assert re.fullmatch(r"repair12007_date\d{14}\.py", created.name)
    assert created.parent == tmp_path and created.exists()
    # the generated step is picked up by the runner and, until written, fails with its own message
    with pytest.raises(RepairError, match=r"NotImplementedError: write the repair step for 12\.7\.0 here"):
        run_repairs(StorageLayout(tmp_path / "s"), "12.7.0", tmp_path)


def test_repairs_command_runs_the_shipped_steps(tmp_path: Path) -> None:
    result = run_cli("repairs", env=clean_env(tmp_path, APP_VERSION="4.0.0"))
    assert result.returncode == 0, result.stderr
    shipped = sorted(path.name for path in (REPO / "repairs").glob("repair*.py"))
    assert result.stdout.splitlines() == [*(f"ran {name}" for name in shipped), f"{tmp_path}/version.info: 4.0.0+"]


def test_prepare_aborts_when_a_step_fails(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "repair4000_date20260101000000.py").write_text(
        "def run(context):\n    raise RuntimeError('cannot migrate')\n"
    )
    storage = tmp_path / "storage"
    result = run_cli("prepare", "--repairs-dir", str(steps), env=clean_env(storage))
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: repair step repair4000_date20260101000000.py failed: RuntimeError: cannot migrate. "
            "Start-up is aborted."
        )
    )
    assert not (storage / "config.yaml").exists()  # repairs run before the config is chosen


UPSTREAM_CONFIG = """debug: true
uvicorn_log_level: info
use_colors: true
embedding:
  protocol: http
  host: localhost
  port: 5000
  llama:
    model: multilingual-e5-large-instruct-q6_k.gguf
llm:
  nc_texttotext:
"""


def test_shipped_step_moves_an_upstream_config_aside(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    storage.mkdir()
    (storage / "config.yaml").write_text(UPSTREAM_CONFIG)
    result = run_cli("prepare", "--device", "cpu", env=clean_env(storage))
    assert result.returncode == 0, result.stderr
    assert (storage / "config.yaml.upstream").read_text() == UPSTREAM_CONFIG
    assert (storage / "config.yaml").read_text() == (REPO / "configs" / "config.cpu.yaml").read_text()


def test_shipped_step_keeps_an_appliance_config(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    storage.mkdir()
    (storage / "config.yaml").write_text("debug: true\n")
    assert run_cli("prepare", env=clean_env(storage)).returncode == 0
    assert (storage / "config.yaml").read_text() == "debug: true\n"
    assert not (storage / "config.yaml.upstream").exists()


SLOW_STEP = """
import time

from appliance.repairs import RepairContext


def run(context: RepairContext) -> None:
    time.sleep(2)  # long enough for the other start to plan while this one runs
    with (context.layout.root / "steps.log").open("a") as log:
        log.write("slow\\n")
"""


def test_two_starts_at_once_run_the_repairs_once_and_neither_crashes(layout: StorageLayout, tmp_path: Path) -> None:
    steps_dir = tmp_path / "slow_repairs"
    steps_dir.mkdir()
    (steps_dir / "repair4000_date20260101000000.py").write_text(SLOW_STEP)
    (steps_dir / "repair4000_date20260201000000.py").write_text(SLOW_STEP.replace("time.sleep(2)", "pass"))
    code = (
        "import sys; from pathlib import Path; from appliance.repairs import run_repairs;"
        " from appliance.storage import StorageLayout;"
        " run_repairs(StorageLayout(Path(sys.argv[1])), '4.0.0', Path(sys.argv[2]))"
    )
    starts = [
        subprocess.Popen(
            [PYTHON, "-c", code, str(layout.root), str(steps_dir)], cwd=REPO, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errors = [start.communicate(timeout=60)[1] for start in starts]
    assert [start.returncode for start in starts] == [0, 0], errors
    assert ran(layout) == ["slow", "slow"]  # each of the two steps once
    assert layout.version_file.read_text() == "4.0.0+\n"
    assert sorted(path.name for path in layout.root.glob("*.tmp")) == []
