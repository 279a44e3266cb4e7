"""The app server of `python -m quart_app.app_server` with another model catalogue, for tests whose models come from
a local HTTP server:

    python tests/contract/app_with_catalogue.py CATALOGUE --bind HOST:PORT [--keep-alive SECONDS]
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from quart_app import create_app
from quart_app.app_logging import configure_logging
from quart_app.app_server import parse_args, serve_app, server_config
from quart_app.app_settings import AppSettings


def main(catalogue: str, argv: list[str]) -> int:
    args = parse_args(argv)
    config = server_config(args.bind, args.keep_alive)
    sockets = config.create_sockets()
    settings = dataclasses.replace(AppSettings.from_env(), model_catalogue=Path(catalogue))
    configure_logging(settings.config.effective_log_level)
    return serve_app(create_app(settings), config, sockets)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
