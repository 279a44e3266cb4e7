"""`python -m appliance <command>`: the appliance's one command line; the only place errors become exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from appliance.cli_logging import configure_cli_logging
from appliance.config import load_config
from appliance.config_files import CONFIG_WAIT_S, config_path, ensure_config
from appliance.config_keys import describe_config_keys
from appliance.database_url import embedded_cluster, read_database_url, resolve_database
from appliance.env_settings import describe_env
from appliance.errors import ApplianceError
from appliance.health import check_all
from appliance.launch import active_config_path, launch_env_path, prepare, read_launch_env
from appliance.os_users import ensure_appliance_users
from appliance.probe import DEVICE_CHOICES, probe_hardware
from appliance.repairs import REPAIRS_DIR, app_version_from_env, generate_step, run_repairs
from appliance.storage import StorageLayout

log = logging.getLogger(__name__)

EXIT_FAILURE = 1
EXIT_USAGE = 2


def _cmd_probe(args: argparse.Namespace) -> int:
    report = probe_hardware(args.device)
    print(json.dumps(report.to_json_dict(), indent=2))
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    layout = StorageLayout.from_env()
    layout.ensure()
    report = probe_hardware(args.device)
    choice = ensure_config(config_path(layout), report.config_variant, args.reset)
    load_config(choice.path)
    action = f"copied {choice.template.name} to" if choice.copied else "kept the existing"
    if choice.followed:
        action = f"copied the new {choice.template.name} (the untouched old copy is {choice.backup}) to"
    print(f"{action} {choice.path} (device {report.device}: {report.reason})")
    return 0


def _cmd_repairs(args: argparse.Namespace) -> int:
    layout = StorageLayout.from_env()
    layout.ensure()
    plan = run_repairs(layout, app_version_from_env(), args.repairs_dir, config_path(layout))
    for step in plan.to_run:
        print(f"ran {step.name}")
    for name, why in plan.skipped:
        print(f"skipped {name}: {why}")
    print(f"{layout.version_file}: {plan.target}")
    return 0


def _cmd_genrepair(args: argparse.Namespace) -> int:
    path = generate_step(app_version_from_env(), args.description, args.repairs_dir)
    print(path)
    return 0


def _cmd_settings(args: argparse.Namespace) -> int:
    env_rows = describe_env()
    config_rows = describe_config_keys()
    if args.json:
        print(json.dumps({"environment": env_rows, "config": config_rows}, indent=2))
        return 0
    print("Environment variables (secrets shown only as set / not set):")
    for row in env_rows:
        print(f"  {row['name']} = {row['value']}  [default: {row['default']}]\n      {row['help']}")
    print("\nconfig.yaml keys:")
    for key in config_rows:
        print(f"  {key['key']}: {key['type']} = {key['default']}" + (f"\n      {key['help']}" if key["help"] else ""))
    return 0


def _cmd_pg_run(args: argparse.Namespace) -> int:
    # prepare put vectordb.pgvector.embedded_tcp_port into the launch environment (empty = socket only)
    tcp_port = os.environ.get("CCB_PG_TCP_PORT", "")
    cluster = embedded_cluster(StorageLayout.from_env(), int(tcp_port) if tcp_port else None)
    try:
        cluster.ensure_initialised()
    except KeyboardInterrupt:  # supervisord's stop signal (SIGINT) during a first start
        log.info("stopped during the first start's initdb; the next start makes the cluster again")
        return 0
    cluster.ensure_tcp_password()
    cluster.exec_server()  # does not return
    return EXIT_FAILURE


def _cmd_os_users(args: argparse.Namespace) -> int:
    users = ensure_appliance_users()
    if not users:
        print("not root: every program runs as this user, no OS user is needed", file=sys.stderr)
    for user in users:
        print(f"{user.pw_name}: uid {user.pw_uid} gid {user.pw_gid}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    prepared = prepare(
        device=args.device,
        reset_config=args.reset_config,
        repairs_dir=args.repairs_dir,
        config_wait_s=args.config_wait,
    )
    hardware = prepared.hardware
    for warning in hardware.warnings:
        print(f"\n*** WARNING: {warning} ***\n", file=sys.stderr)
    choice, plan = prepared.config_choice, prepared.repairs
    config = "shared, created by the setup replica" if choice is None else "new" if choice.copied else ""
    if choice is not None and choice.followed:
        config = f"the new {choice.template.name}; the untouched old copy is {choice.backup}"
    print(
        f"prepared {prepared.layout.root} as APP_ROLE={prepared.role}: device {hardware.device} ({hardware.reason}); "
        f"config {prepared.config_file}{f' ({config})' if config else ''}; "
        f"repairs run: {'none, not this role' if plan is None else len(plan.to_run)}; "
        f"database: {prepared.database.source}",
        file=sys.stderr,
    )
    return 0


def _cmd_healthcheck(args: argparse.Namespace) -> int:
    layout = StorageLayout.from_env()
    config = load_config(active_config_path(layout))
    url = read_database_url(layout) or resolve_database(config, layout).url
    results = check_all(config, url, timeout_s=args.timeout)
    for result in results:
        print(f"{result.part}: {'ok' if result.ok else 'FAILED'} ({result.detail})")
    failed = [result.part for result in results if not result.ok]
    if failed:
        print(f"unhealthy: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _cmd_ctl(args: argparse.Namespace) -> int:
    """supervisorctl with the variables supervisord.conf expands, read from this run's launch.env."""
    layout = StorageLayout.from_env()
    env_file = launch_env_path(layout)
    if not env_file.exists():
        print(f"error: {env_file} is missing; start the appliance first (./entrypoint.sh or make run)", file=sys.stderr)
        return EXIT_FAILURE
    env = dict(os.environ, APP_PERSISTENT_STORAGE=str(layout.root), **read_launch_env(env_file))
    conf = Path(__file__).resolve().parent.parent / "supervisord.conf"
    command = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), *args.ctl_args]
    os.execve(sys.executable, command, env)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the option may come before or after the command without the subcommand's default winning
    common.add_argument("--log-level", default=argparse.SUPPRESS, help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser = argparse.ArgumentParser(prog="python -m appliance", description=__doc__, parents=[common])
    parser.set_defaults(log_level="INFO")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def device_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--device",
            type=str.lower,  # any case, as COMPUTE_DEVICE
            choices=DEVICE_CHOICES,
            help="override the probe (default: env COMPUTE_DEVICE)",
        )

    def repairs_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--repairs-dir", type=Path, default=REPAIRS_DIR, help="directory of the repair step files")

    sub = commands.add_parser(parents=[common], name="probe", help="print the hardware probe as JSON")
    device_option(sub)
    sub.set_defaults(handler=_cmd_probe)
    sub = commands.add_parser(
        parents=[common], name="config", help="copy the config for the detected hardware unless one exists"
    )
    device_option(sub)
    sub.add_argument("--reset", action="store_true", help="re-copy it; the old file is kept as config.yaml.bak")
    sub.set_defaults(handler=_cmd_config)
    sub = commands.add_parser(parents=[common], name="repairs", help="run the start-up repair steps")
    repairs_option(sub)
    sub.set_defaults(handler=_cmd_repairs)
    sub = commands.add_parser(parents=[common], name="genrepair", help="create a new repair step file for APP_VERSION")
    sub.add_argument("--description", default="TODO: say what this repair step fixes and why.")
    repairs_option(sub)
    sub.set_defaults(handler=_cmd_genrepair)
    sub = commands.add_parser(
        parents=[common], name="settings", help="list every environment variable and config key with its default"
    )
    sub.add_argument("--json", action="store_true")
    sub.set_defaults(handler=_cmd_settings)
    sub = commands.add_parser(
        parents=[common], name="pg-run", help="initialise the embedded PostgreSQL if needed and run it (supervisord)"
    )
    sub.set_defaults(handler=_cmd_pg_run)
    sub = commands.add_parser(
        parents=[common], name="os-users", help="create the OS users ccb_postgres and ccb_parser (root; Dockerfile)"
    )
    sub.set_defaults(handler=_cmd_os_users)
    sub = commands.add_parser(
        parents=[common], name="prepare", help="storage, repairs, probe + config, validation (entrypoint.sh)"
    )
    device_option(sub)
    sub.add_argument("--reset-config", action="store_true", help="re-copy the config for the detected hardware")
    sub.add_argument(
        "--config-wait",
        type=float,
        default=CONFIG_WAIT_S,
        metavar="SECONDS",
        help="a role that creates no config waits this long for the shared one (default 20 minutes)",
    )
    repairs_option(sub)
    sub.set_defaults(handler=_cmd_prepare)
    sub = commands.add_parser(
        parents=[common], name="healthcheck", help="exit 0 only when the app, PostgreSQL and the embedder answer"
    )
    sub.add_argument("--timeout", type=float, default=5.0, help="seconds per check")
    sub.set_defaults(handler=_cmd_healthcheck)
    sub = commands.add_parser(parents=[common], name="ctl", help="supervisorctl for the running appliance")
    sub.add_argument("ctl_args", nargs=argparse.REMAINDER, help="e.g. status, restart app, tail -f postgres")
    sub.set_defaults(handler=_cmd_ctl)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_cli_logging(args.command, args.log_level)
    try:
        return int(args.handler(args))
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
