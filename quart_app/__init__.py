"""The Context Chat backend ExApp: `create_app()` builds the Quart app; `python -m quart_app.app_server` serves it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quart import Quart

    from quart_app.app_settings import AppSettings


def create_app(settings: AppSettings | None = None) -> Quart:
    """The app; resources open in before_serving and close in after_serving (imported lazily: the embedder
    program also lives in this package and must not pull in the whole app)."""
    from quart_app.app_factory import build_app

    return build_app(settings)
