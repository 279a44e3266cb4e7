"""The two TaskProcessing providers and custom task types the backend declares since PHP app 5.4 (upstream #321)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CHAT_TASK_TYPE = "context_chat:context_chat"
SEARCH_TASK_TYPE = "context_chat:context_chat_search"
CHAT_PROVIDER = "context_chat-context_chat"
SEARCH_PROVIDER = "context_chat-context_chat_search"
PROVIDER_PATH = "/ocs/v1.php/apps/app_api/api/v1/ai_provider/task_processing"
NEXT_TASK_PATH = "/ocs/v2.php/taskprocessing/tasks_provider/next"
RESULT_PATH = "/ocs/v2.php/taskprocessing/tasks_provider/{task_id}/result"
PROGRESS_PATH = "/ocs/v2.php/taskprocessing/tasks_provider/{task_id}/progress"
# the provider registrations' expected_runtime, in seconds
EXPECTED_RUNTIME_S = 30
DEFAULT_SEARCH_LIMIT = 10

# ShapeType of OCP\TaskProcessing\EShapeType
NUMBER, TEXT, LIST_OF_TEXTS = 0, 1, 11


def _shape(name: str, description: str, shape_type: int) -> dict[str, Any]:
    return {"name": name, "description": description, "shape_type": shape_type}


def _registration(
    provider_id: str,
    task_type: str,
    type_name: str,
    description: str,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    defaults: dict[str, Any],
) -> dict[str, Any]:
    provider = {
        "id": provider_id,
        "name": "Context Chat",
        "task_type": task_type,
        "expected_runtime": EXPECTED_RUNTIME_S,
        "optional_input_shape": [],
        "optional_output_shape": [],
        "input_shape_enum_values": {},
        "input_shape_defaults": defaults,
        "optional_input_shape_enum_values": {},
        "optional_input_shape_defaults": {},
        "output_shape_enum_values": {},
        "optional_output_shape_enum_values": {},
    }
    custom = {
        "id": task_type,
        "name": type_name,
        "description": description,
        "input_shape": inputs,
        "output_shape": outputs,
    }
    return {"provider": provider, "customTaskType": custom}


_SCOPE_META = _shape("scopeListMeta", "Required to nicely render the scope list in assistant", TEXT)
_SOURCES = _shape("sources", "The sources that were found", LIST_OF_TEXTS)

CHAT_REGISTRATION = _registration(
    CHAT_PROVIDER,
    CHAT_TASK_TYPE,
    "Context Chat",
    "Ask a question about your data.",
    [
        _shape("prompt", "Ask a question about your documents, files and more", TEXT),
        _shape("scopeType", 'Any of the following values: "none", "source", "provider".', TEXT),
        _shape("scopeList", "List of sources or providers", LIST_OF_TEXTS),
        _SCOPE_META,
    ],
    [
        _shape("output", "The generated response", TEXT),
        _shape("sources", "The sources referenced to generate the response", LIST_OF_TEXTS),
    ],
    {},
)

SEARCH_REGISTRATION = _registration(
    SEARCH_PROVIDER,
    SEARCH_TASK_TYPE,
    "Context Chat search",
    "Search with Context Chat.",
    [
        _shape("prompt", "Search your documents, files and more", TEXT),
        _shape("scopeType", 'Any of the following values: "none", "provider".', TEXT),
        _shape("scopeList", "List of providers", LIST_OF_TEXTS),
        _SCOPE_META,
        _shape("limit", "Maximum number of results returned by Context Chat", NUMBER),
    ],
    [_SOURCES],
    {"limit": DEFAULT_SEARCH_LIMIT},
)

REGISTRATIONS = (CHAT_REGISTRATION, SEARCH_REGISTRATION)
PROVIDER_OF_TYPE = {CHAT_TASK_TYPE: CHAT_PROVIDER, SEARCH_TASK_TYPE: SEARCH_PROVIDER}


def next_task_body(task_types: Sequence[str]) -> dict[str, list[str]]:
    """The body of a poll that Nextcloud answers with the oldest scheduled task of these types only."""
    return {"providerIds": [PROVIDER_OF_TYPE[t] for t in task_types], "taskTypeIds": list(task_types)}
