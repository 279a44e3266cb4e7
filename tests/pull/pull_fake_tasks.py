"""The fake Nextcloud's TaskProcessing: AppAPI's provider registration, the provider's next task, result and progress
(Nextcloud 34's rules), the core:text2text provider nc_texttotext calls, and AppAPI's init status."""

from __future__ import annotations

from typing import Any

from pull_fake_base import FakeNextcloudBase
from pull_fake_wire import _DONE, TEXT2TEXT, RecordedRequest, _Reply, _shape_value_ok


class TaskRoutes(FakeNextcloudBase):
    """TaskProcessing as the tasks loop and nc_texttotext see it; tasks are scheduled and finished by the test."""

    def schedule_task(self, task_type: str, user_id: str, input: dict[str, Any], app_id: str = "assistant") -> int:
        with self._lock:
            self._ids["task"] += 1
            task_id, now = self._ids["task"], int(self.now())
            self.tasks[task_id] = {"id": task_id, "type": task_type, "lastUpdated": now, "status": "STATUS_SCHEDULED",
                                   "userId": user_id, "appId": app_id, "input": input, "output": None,
                                   "customId": "", "completionExpectedAt": None, "progress": 0, "scheduledAt": now,
                                   "startedAt": None, "endedAt": None, "errorMessage": None}  # fmt: skip
            return task_id

    def text2text_tasks(self) -> list[int]:
        """Ids of the core:text2text tasks scheduled so far (nc_texttotext's LLM calls), oldest first."""
        with self._lock:
            return [task_id for task_id, task in self.tasks.items() if task["type"] == TEXT2TEXT]

    def finish_text2text(self, task_id: int, output: str) -> None:
        """The text-to-text provider answers: a core:text2text task runs until its test calls this (a slow LLM)."""
        with self._cond:
            now = int(self.now())
            self.tasks[task_id].update(status="STATUS_SUCCESSFUL", output={"output": output}, endedAt=now, progress=1)
            self._cond.notify_all()

    def cancel_task(self, task_id: int) -> None:
        """The user cancels the task in the Assistant: only a scheduled or running one becomes CANCELLED (Nextcloud 34
        lib/private/TaskProcessing/Manager.php:1187-1201)."""
        with self._cond:
            task = self.tasks[task_id]
            if task["status"] in ("STATUS_SCHEDULED", "STATUS_RUNNING"):
                now = int(self.now())
                task.update(status="STATUS_CANCELLED", endedAt=now, lastUpdated=now)
            self._cond.notify_all()

    def delete_task(self, task_id: int) -> None:
        """The user deletes the task in the Assistant: Nextcloud drops its row, later calls about it answer 404."""
        with self._cond:
            del self.tasks[task_id]
            self._cond.notify_all()

    def wait_task(self, task_id: int, timeout: float) -> dict[str, Any]:
        """Block until the task is SUCCESSFUL or FAILED (TimeoutError otherwise); returns a copy of it."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.tasks[task_id]["status"] in _DONE, timeout):
                raise TimeoutError(f"task {task_id} is still {self.tasks[task_id]['status']}")
            return dict(self.tasks[task_id])

    def _register(self, req: RecordedRequest) -> _Reply:
        body = req.json if isinstance(req.json, dict) else {}
        provider, task_type = body.get("provider"), body.get("customTaskType")
        if not isinstance(provider, dict) or not isinstance(task_type, dict) or not provider.get("id"):
            return self._bad(req, "provider and customTaskType are required")
        if provider.get("task_type") != task_type.get("id"):
            return self._bad(req, "provider.task_type must equal customTaskType.id")
        runtime = provider.get("expected_runtime")
        if not isinstance(runtime, int) or isinstance(runtime, bool):
            return self._bad(req, "expected_runtime must be an integer")
        if not all(isinstance(v, dict) for k, v in provider.items() if k.endswith("_defaults")):
            return self._bad(req, "*_defaults must be objects")
        with self._lock:
            self.providers[str(provider["id"])] = {"provider": provider, "customTaskType": task_type}
        return self._ocs(req, [])

    def _unregister(self, req: RecordedRequest) -> _Reply:
        with self._lock:
            found = self.providers.pop(req.query.get("name", ""), None)
        return self._ocs(req, [], 404 if found is None else 200)

    def _next_task(self, req: RecordedRequest) -> _Reply:
        if error := self._missing(req, ("providerIds", "taskTypeIds")):
            return error
        body = req.json
        with self._lock:
            serving: dict[str, str] = {}  # task type -> the first registered provider asked for it
            for pid, reg in self.providers.items():
                if pid in body["providerIds"] and reg["provider"]["task_type"] in body["taskTypeIds"]:
                    serving.setdefault(reg["provider"]["task_type"], pid)
            ready = [t for t in self.tasks.values() if t["status"] == "STATUS_SCHEDULED" and t["type"] in serving]
            if not ready:
                return _Reply(204)
            task = min(ready, key=lambda t: int(t["id"]))
            now = int(self.now())
            task.update(status="STATUS_RUNNING", startedAt=now, lastUpdated=now)
            data = {"task": dict(task), "provider": {"name": serving[task["type"]]}}
        return self._ocs(req, data)

    def _result(self, req: RecordedRequest, task_id: str) -> _Reply:
        body = req.json if isinstance(req.json, dict) else {}
        with self._cond:
            task = self.tasks.get(int(task_id))
            if task is None:
                return self._ocs(req, [], 404, "task not found")
            if task["status"] == "STATUS_CANCELLED":
                # Nextcloud 34 keeps a cancelled task as it is and answers 200 with it (Manager.php:1229-1232,
                # TaskProcessingApiController.php:632-640)
                return self._ocs(req, {"task": dict(task)})
            output = body.get("output")
            if output is None:
                task.update(status="STATUS_FAILED", output=None, errorMessage=body.get("errorMessage"))
            else:
                types = [r["customTaskType"] for r in self.providers.values()]
                shape = next((t.get("output_shape", []) for t in types if t.get("id") == task["type"]), None)
                ok = shape is not None and isinstance(output, dict)
                ok = ok and all(s["name"] in output and _shape_value_ok(s.get("shape_type"), output[s["name"]])
                                for s in shape or [])  # fmt: skip
                failed = {"status": "STATUS_FAILED", "output": None, "errorMessage": "output shape mismatch"}
                task.update({"status": "STATUS_SUCCESSFUL", "output": output} if ok else failed)
            if "userFacingErrorMessage" in body:
                task["userFacingErrorMessage"] = body["userFacingErrorMessage"]
            now = int(self.now())
            task.update(endedAt=now, lastUpdated=now, progress=1)
            self._cond.notify_all()
            data = {"task": dict(task)}
        return self._ocs(req, data)

    def _progress(self, req: RecordedRequest, task_id: str) -> _Reply:
        """As Nextcloud 34 (core/Controller/TaskProcessingApiController.php:597-613, Manager::setTaskProgress
        lib/private/TaskProcessing/Manager.php:1204-1223): a deleted task answers 404; a cancelled one stays as it is
        and is answered 200 with its status; any other becomes RUNNING with the progress."""
        if error := self._missing(req, (), ("progress",)):
            return error
        progress = req.json["progress"]
        if not isinstance(progress, int | float):
            return self._bad(req, "progress must be a number")
        with self._lock:
            task = self.tasks.get(int(task_id))
            if task is None:
                return self._ocs(req, {"message": "Not found"}, 404, "Not found")
            if task["status"] != "STATUS_CANCELLED":
                now = int(self.now())
                if task["status"] == "STATUS_SCHEDULED":
                    task["startedAt"] = now
                task.update(status="STATUS_RUNNING", progress=progress, lastUpdated=now)
            data = {"task": dict(task)}
        return self._ocs(req, data)

    def _schedule_text2text(self, req: RecordedRequest) -> _Reply:
        body = req.json if isinstance(req.json, dict) else {}
        if body.get("type") != TEXT2TEXT or not isinstance(body.get("input"), dict):
            return self._bad(req, "only core:text2text tasks with an input are provided here")
        task_id = self.schedule_task(TEXT2TEXT, req.user, body["input"], str(body.get("appId", "")))
        with self._lock:
            self.tasks[task_id]["status"] = "STATUS_RUNNING"
            data = {"task": dict(self.tasks[task_id])}
        return self._ocs(req, data)

    def _text2text_task(self, req: RecordedRequest, task_id: str) -> _Reply:
        with self._lock:
            task = self.tasks.get(int(task_id))
            if task is None or task["type"] != TEXT2TEXT or task["userId"] != req.user:
                return self._ocs(req, [], 404, "task not found")
            data = {"task": dict(task)}
        return self._ocs(req, data)

    def _cancel_text2text(self, req: RecordedRequest, task_id: str) -> _Reply:
        with self._cond:
            task = self.tasks.get(int(task_id))
            if task is None or task["type"] != TEXT2TEXT or task["userId"] != req.user:
                return self._ocs(req, [], 404, "task not found")
            task.update(status="STATUS_CANCELLED", endedAt=int(self.now()))
            self._cond.notify_all()
            data = {"task": dict(task)}
        return self._ocs(req, data)

    def _init_status(self, req: RecordedRequest) -> _Reply:
        with self._lock:
            self.init_status.append(req.json)
        return self._ocs(req, [])
