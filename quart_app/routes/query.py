"""POST /query and POST /docSearch (4.4+): answers and document search over what the user may read.

Called by the PHP app <= 5.3 (push mode), which never sends an unshare: Nextcloud is asked which candidate files the
user still reads before they are used (quart_app/nextcloud/readable_files.py).
"""

from __future__ import annotations

from quart import Blueprint, Response

from quart_app.engine import engine
from quart_app.http_errors import caller_never_requeues, json_message
from quart_app.lifecycle import lifecycle, require_enabled
from quart_app.nextcloud.readable_files import UnreadableFilesByDav
from quart_app.wire_models import DocSearchQuery, Query, parse_body

blueprint = Blueprint("query", __name__)


@blueprint.post("/query")
@caller_never_requeues
@require_enabled
async def query() -> Response:
    body = await parse_body(Query)
    answers = engine().answers()
    result = await answers.query(
        body.userId,
        body.query,
        use_context=body.useContext,
        scope_type=body.scopeType,
        scope_list=body.scopeList,
        ctx_limit=body.ctxLimit,
        unreadable=_unreadable_check(),
    )
    # upstream returns the sources set-deduplicated; order kept here (best first)
    sources = list(dict.fromkeys(result["sources"]))
    return json_message({"output": result["output"], "sources": sources})


@blueprint.post("/docSearch")
@caller_never_requeues
@require_enabled
async def doc_search() -> Response:
    body = await parse_body(DocSearchQuery)
    answers = engine().answers()
    hits = await answers.doc_search(
        body.userId,
        body.query,
        limit=body.ctxLimit,
        scope_type=body.scopeType,
        scope_list=body.scopeList,
        with_passages=body.withPassages,
        unreadable=_unreadable_check(),
    )
    return json_message(hits)


def _unreadable_check() -> UnreadableFilesByDav | None:
    """Nextcloud's word on which candidate files the user still reads; None without NEXTCLOUD_URL (standalone use:
    no Nextcloud to ask, and none that shares files)."""
    state = lifecycle()
    if state.nextcloud is None:
        return None
    return UnreadableFilesByDav(state.nextcloud, state.settings.config.nextcloud.readable_check_timeout_s)
