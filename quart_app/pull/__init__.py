"""Pull mode (PHP app 5.4+): pollers for the documents and actions queues and for TaskProcessing tasks."""

from __future__ import annotations

import logging
from collections.abc import Callable

from appliance.config import AppConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.nextcloud import NextcloudClient, NextcloudError
from quart_app.pull.action_poller import ActionPoller
from quart_app.pull.document_poller import DocumentPoller
from quart_app.pull.pull_gate import PullGate
from quart_app.pull.task_poller import TaskPoller
from quart_app.services.answer import AnswerService
from quart_app.services.ingest import IngestService
from quart_app.services.source_spool import SourceSpool
from quart_app.store import Database

log = logging.getLogger(__name__)


class PullMode:
    """The three pollers behind one gate; they idle while the app is disabled or the PHP app pushes (<= 5.3)."""

    def __init__(
        self,
        nextcloud: NextcloudClient,
        config: AppConfig,
        enabled: Callable[[], bool],
        db: Database,
        ingest: IngestService,
        answers: AnswerService,
        spool: SourceSpool,
    ) -> None:
        self.gate = PullGate(nextcloud, config.pull, enabled, db)
        self.documents = DocumentPoller(nextcloud, self.gate, ingest, spool, config)
        self.actions = ActionPoller(nextcloud, self.gate, db, ingest.order, config)
        self.tasks = TaskPoller(nextcloud, self.gate, answers, config.pull)

    def start(self, loops: BackgroundLoops) -> None:
        loops.start("documents", self.documents.run)
        loops.start("actions", self.actions.run)
        loops.start("tasks", self.tasks.run)

    async def enabled_changed(self, enabled: bool) -> None:
        """PUT /enabled: wake the loops; on disable, take our task types out of Nextcloud."""
        self.gate.enabled_changed()
        if not enabled and self.gate.available is not False:
            try:
                await self.tasks.unregister()
            except NextcloudError as exc:
                log.warning("could not unregister the TaskProcessing providers: %s", exc)
