"""Start-up repair steps (repairs/repairMMMmmm_dateYYYYMMDDHHMMSS.py) with upstream's version.info semantics, fixed.

Rules: `version.info` holds the version whose repairs are done ("4.0.0+"); a missing file means "never repaired",
so every step runs (upstream ran none). Steps newer than that version, up to APP_VERSION, run in ascending
(version, date) order. A step's name holds only MAJOR.MINOR, so the steps of version.info's own minor run unless
`applied_repairs.info` lists them: a patch release (4.0.1 -> 4.0.2) may add one. `repair.info` lists file names to
skip. `partial_repair.tmp` records finished steps so a failed run resumes where it stopped. A failing step aborts
start-up with a RepairError.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.env_settings import env_value
from appliance.errors import RepairError
from appliance.safe_fs import replace_file
from appliance.storage import StorageLayout

log = logging.getLogger(__name__)

REPAIRS_DIR = Path(__file__).resolve().parent.parent / "repairs"
STEP_NAME = re.compile(r"^repair(?P<version>\d{4,})_date(?P<date>\d{14})\.py$")
_VERSION = re.compile(r"^\s*v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.\d+)?[^+\s]*(?P<done>\+)?\s*$")


@dataclass(frozen=True)
class RepairContext:
    """What a step may use: storage layout, config file, version repaired last (None = never), new version."""

    layout: StorageLayout
    config_file: Path
    previous_version: int | None
    app_version: str


@dataclass(frozen=True, order=True)
class RepairStep:
    """One step file; ordered by (introduced version, date)."""

    version: int
    date: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class RepairPlan:
    """The steps that will run, the ones skipped and why, and the version and steps recorded at the end."""

    to_run: tuple[RepairStep, ...]
    skipped: tuple[tuple[str, str], ...]
    previous_version: int | None
    target: str
    # applied_repairs.info once the run succeeds: every step up to the target but the ones repair.info skips
    applied: tuple[str, ...]


def version_number(version: str) -> int:
    """Upstream's numbering: int(major + minor padded to 3 digits); '4.1.2' -> 4001."""
    match = _VERSION.match(version)
    if match is None:
        raise RepairError(f"version {version!r} is not MAJOR.MINOR[.PATCH]; set APP_VERSION to e.g. 4.0.0")
    return int(match["major"] + match["minor"].zfill(3))


def discover_steps(repairs_dir: Path = REPAIRS_DIR) -> list[RepairStep]:
    """Every well-named step file, ascending; a file that looks like a step but is misnamed is an error."""
    steps = []
    for path in sorted(repairs_dir.glob("repair*.py")):
        match = STEP_NAME.match(path.name)
        if match is None:
            raise RepairError(
                f"{path}: a repair step must be named repairMMMmmm_dateYYYYMMDDHHMMSS.py; "
                "create steps with 'python -m appliance genrepair'"
            )
        steps.append(RepairStep(version=int(match["version"]), date=match["date"], path=path))
    return sorted(steps)


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _skip_names(path: Path) -> set[str]:
    """repair.info: one step file name per line (with or without .py)."""
    return {name if name.endswith(".py") else name + ".py" for name in _read_lines(path)}


def read_previous(layout: StorageLayout) -> tuple[int | None, bool]:
    """(version number, its repairs finished) from version.info; (None, False) when the file is missing or empty."""
    lines = _read_lines(layout.version_file)
    if not lines:
        return None, False
    match = _VERSION.match(lines[0])
    if match is None:
        raise RepairError(
            f"{layout.version_file} holds {lines[0]!r}, not a version such as 4.0.0+; "
            "delete the file to run every repair step again"
        )
    return int(match["major"] + match["minor"].zfill(3)), match["done"] is not None


def _applied_names(layout: StorageLayout) -> set[str] | None:
    """The steps applied_repairs.info lists; None when it is missing (version.info written before it was kept)."""
    if not layout.applied_repairs_file.exists():
        return None
    return set(_read_lines(layout.applied_repairs_file))


def plan_repairs(layout: StorageLayout, app_version: str, repairs_dir: Path = REPAIRS_DIR) -> RepairPlan:
    """Decide which steps run; pure apart from reading the four state files and the step directory."""
    target = version_number(app_version)
    previous, done = read_previous(layout)
    skip = _skip_names(layout.repair_skip_file)
    finished = set(_read_lines(layout.partial_repair_file))
    applied = _applied_names(layout)
    to_run: list[RepairStep] = []
    skipped: list[tuple[str, str]] = []
    recorded: list[str] = []
    for step in discover_steps(repairs_dir):
        if step.version <= target and step.name not in skip:
            recorded.append(step.name)
        # without the record, every step of version.info's minor counts as applied (the rule before it was kept)
        same_minor_applied = done and step.version == previous and (applied is None or step.name in applied)
        if step.version > target:
            skipped.append((step.name, f"introduced after APP_VERSION {app_version}"))
        elif previous is not None and (step.version < previous or same_minor_applied):
            skipped.append((step.name, f"already applied ({layout.version_file.name})"))
        elif step.name in skip:
            skipped.append((step.name, f"listed in {layout.repair_skip_file.name}"))
        elif step.name in finished:
            skipped.append((step.name, f"finished in an earlier partial run ({layout.partial_repair_file.name})"))
        else:
            to_run.append(step)
    return RepairPlan(tuple(to_run), tuple(skipped), previous, f"{app_version}+", tuple(recorded))


@contextlib.contextmanager
def _repairs_lock(layout: StorageLayout) -> Iterator[None]:
    """One start at a time runs the repairs (two roles on one volume start at once); the next plans after it."""
    layout.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.repair_lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _run_step(step: RepairStep, context: RepairContext) -> None:
    spec = importlib.util.spec_from_file_location(f"ccb_repair_{step.version}_{step.date}", step.path)
    if spec is None or spec.loader is None:
        raise RepairError(f"{step.path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise RepairError(f"{step.path}: a repair step must define run(context: RepairContext) -> None")
    run(context)


def run_repairs(
    layout: StorageLayout,
    app_version: str | None = None,
    repairs_dir: Path = REPAIRS_DIR,
    config_file: Path | None = None,
) -> RepairPlan:
    """Run the planned steps; on success write version.info = APP_VERSION+ and drop partial_repair.tmp."""
    version = app_version or env_value("APP_VERSION") or ""
    if not version:
        raise RepairError("APP_VERSION is not set; AppAPI sets it, for a manual start export APP_VERSION=4.0.0")
    with _repairs_lock(layout):
        plan = plan_repairs(layout, version, repairs_dir)
        if plan.previous_version is None:
            log.info("no %s: running every repair step up to %s", layout.version_file, version)
        for name, why in plan.skipped:
            log.info("repair %s skipped: %s", name, why)
        context = RepairContext(
            layout=layout,
            config_file=config_file or layout.config_file,
            previous_version=plan.previous_version,
            app_version=version,
        )
        finished = _read_lines(layout.partial_repair_file)
        for step in plan.to_run:
            log.info("repair %s: running", step.name)
            try:
                _run_step(step, context)
            except Exception as exc:
                raise RepairError(
                    f"repair step {step.name} failed: {type(exc).__name__}: {exc}. Start-up is aborted. Fix the cause"
                    f" and start again (finished steps are recorded in {layout.partial_repair_file} and will not run"
                    f" twice), or skip the step by adding the line '{step.name}' to {layout.repair_skip_file}"
                ) from exc
            finished.append(step.name)
            replace_file(layout.partial_repair_file, "".join(f"{name}\n" for name in finished), 0o644)
            log.info("repair %s: done", step.name)
        current_previous, _ = read_previous(layout)
        if current_previous is not None and current_previous > version_number(version):
            log.warning("%s records a newer version than %s; leaving it as it is", layout.version_file, version)
        else:
            replace_file(layout.applied_repairs_file, "".join(f"{name}\n" for name in plan.applied), 0o644)
            replace_file(layout.version_file, plan.target + "\n", 0o644)
        layout.partial_repair_file.unlink(missing_ok=True)
        return plan


STEP_TEMPLATE = '''"""{description}"""

from __future__ import annotations

from appliance.repairs import RepairContext


def run(context: RepairContext) -> None:
    """Runs once, at the first start of {version} or later; must be safe to run again after a partial failure."""
    raise NotImplementedError("write the repair step for {version} here")
'''


def generate_step(
    app_version: str, description: str, repairs_dir: Path = REPAIRS_DIR, now: datetime | None = None
) -> Path:
    """Create repairs/repair<version>_date<UTC now>.py from a template; refuses to overwrite."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    path = repairs_dir / f"repair{version_number(app_version)}_date{stamp}.py"
    if path.exists():
        raise RepairError(f"{path} exists already; wait a second and run genrepair again")
    repairs_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(STEP_TEMPLATE.format(description=description, version=app_version), encoding="utf-8")
    return path


def app_version_from_env(environ: Mapping[str, str] | None = None) -> str:
    return env_value("APP_VERSION", environ) or ""
