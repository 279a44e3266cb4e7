"""The cross-lingual leg's opening in the engine: its model (a second handle for questions where they would wait for
the backfill's call) and, in a role with the embedding duty, its backfill loop."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from appliance.app_role import ANSWER_DUTIES, Duty, has_duty, needs_any
from quart_app.app_settings import AppSettings
from quart_app.background_loops import BackgroundLoops
from quart_app.daemon_thread import in_daemon_thread
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.stop_deadline import ClosingSteps
from quart_app.store import Database

log = logging.getLogger(__name__)


async def open_cross_lingual(
    settings: AppSettings,
    db: Database,
    closing: ClosingSteps,
    loops: BackgroundLoops | None,
    waiting: Callable[[str | None], None] = lambda _wait: None,
) -> CrossLingualIndex | None:
    """The cross-lingual leg's model and, in a role with the embedding duty, its backfill loop; None when it is off
    or its model cannot be loaded (logged: the other legs answer as before). `waiting` is told whose migration the
    model's binding waits for, if any, then None."""
    from quart_app.runtimes.cross_lingual_model import (
        CrossLingualModel,
        load_cross_lingual_model,
        shares_weights_between_handles,
    )
    from quart_app.runtimes.errors import CrossLingualModelError
    from quart_app.store.cross_lingual_store import bind_model

    config = settings.config.retrieval.cross_lingual
    role = settings.role
    if config is None or not needs_any(role, ANSWER_DUTIES | {Duty.EMBEDDING}):
        return None
    load = functools.partial(load_cross_lingual_model, config, settings.model_catalogue, settings.storage.model_dir)
    fills_here = loops is not None and has_duty(role, Duty.EMBEDDING)
    try:
        runtime = await in_daemon_thread(load, "load-cross-lingual-model")
        # a replica that fills in the vectors and answers questions: questions get a handle of their own, so that
        # they never wait for the fill's call under way
        question_runtime = None
        if (
            fills_here
            and needs_any(role, ANSWER_DUTIES)
            and shares_weights_between_handles(config, settings.model_catalogue)
        ):
            question_runtime = await in_daemon_thread(load, "load-cross-lingual-model")
    except CrossLingualModelError as exc:
        log.warning("%s; the cross-lingual leg is off", exc)
        return None
    model = CrossLingualModel(runtime, question_runtime)
    closing.add(f"cross-lingual model {model.model_id}", model.aclose)
    async with db.connection() as conn:
        await bind_model(conn, model.model_id, model.dimension, waiting)
    index = CrossLingualIndex(db, model, config)
    if loops is not None and fills_here:
        loops.start(CrossLingualIndex.LOOP_NAME, index.run)
        closing.add("cross-lingual backfill", functools.partial(loops.stop, [CrossLingualIndex.LOOP_NAME]))
    return index
