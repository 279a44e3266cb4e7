"""Pull mode (PHP app 5.4+): pollers for the documents and actions queues and for TaskProcessing tasks.

Each poller runs only in a role with its duty (appliance/app_role.py): indexing the documents, updatesproc the
actions, requestproc the tasks, normal all three.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from appliance.app_role import AppRole, Duty, has_duty
from appliance.config import AppConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.nextcloud import NextcloudClient, NextcloudError
from quart_app.pull.action_poller import ActionPoller
from quart_app.pull.document_poller import DocumentPoller
from quart_app.pull.pull_gate import PullGate
from quart_app.pull.replica_slot import ReplicaSlot, claim_replica_slot
from quart_app.pull.task_poller import TaskPoller
from quart_app.services.answer import AnswerService
from quart_app.services.ingest import IngestService
from quart_app.services.source_spool import SourceSpool
from quart_app.store import Database

log = logging.getLogger(__name__)


class PullMode:
    """The role's pollers behind one gate; they idle while the app is disabled or the PHP app pushes (<= 5.3)."""

    def __init__(
        self,
        nextcloud: NextcloudClient,
        config: AppConfig,
        enabled: Callable[[], bool],
        db: Database,
        ingest: IngestService,
        answers: AnswerService | None,
        spool: SourceSpool,
        run_dir: Path,
        role: AppRole = AppRole.NORMAL,
    ) -> None:
        self.gate = PullGate(nextcloud, config.pull, enabled, db)
        # held while the app runs: the documents loop's name for the batch it has in hand
        self.replica: ReplicaSlot | None = None
        self.documents = None
        if has_duty(role, Duty.DOCUMENT_QUEUE):
            self.replica = claim_replica_slot(run_dir)
            self.documents = DocumentPoller(nextcloud, self.gate, ingest, spool, config, db, self.replica.name)
        self.actions = (
            ActionPoller(nextcloud, self.gate, db, ingest.order, config) if has_duty(role, Duty.ACTION_QUEUE) else None
        )
        # the engine builds the answer service exactly for the roles that answer tasks
        self.tasks = (
            TaskPoller(nextcloud, self.gate, answers, config.pull, config.nextcloud.readable_check_timeout_s)
            if answers is not None and has_duty(role, Duty.TASKS)
            else None
        )

    def start(self, loops: BackgroundLoops) -> None:
        if self.documents is not None:
            loops.start("documents", self.documents.run)
        if self.actions is not None:
            loops.start("actions", self.actions.run)
        if self.tasks is not None:
            loops.start("tasks", self.tasks.run)

    async def close(self) -> None:
        if self.replica is not None:
            self.replica.close()

    async def enabled_changed(self, enabled: bool) -> None:
        """PUT /enabled: wake the loops; on disable, take our task types out of Nextcloud."""
        self.gate.enabled_changed()
        if not enabled and self.tasks is not None and self.gate.available is not False:
            try:
                await self.tasks.unregister()
            except NextcloudError as exc:
                log.warning("could not unregister the TaskProcessing providers: %s", exc)
