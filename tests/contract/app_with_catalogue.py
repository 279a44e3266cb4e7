"""The app server of `python -m quart_app.app_server` with another model catalogue, for tests whose models come from
a local HTTP server:

    python tests/contract/app_with_catalogue.py CATALOGUE HOST:PORT
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

from quart_app import create_app
from quart_app.app_logging import configure_logging
from quart_app.app_server import serve_until_signal, server_config
from quart_app.app_settings import AppSettings
from quart_app.lifecycle import STATE_EXTENSION, Lifecycle


def main(catalogue: str, bind: str) -> int:
    settings = dataclasses.replace(AppSettings.from_env(), model_catalogue=Path(catalogue))
    configure_logging(settings.config.log_level)
    app = create_app(settings)
    state: Lifecycle = app.extensions[STATE_EXTENSION]
    config = server_config(bind)
    asyncio.run(serve_until_signal(app, config, state.stop_requested, sockets=config.create_sockets()))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
