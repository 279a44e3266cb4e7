"""Validation of the id lists and names that services receive from routes."""

from __future__ import annotations

from quart_app.services.errors import InvalidRequestError

# ids per statement/transaction for long lists (sent as one array parameter, never one parameter per id)
BATCH = 10_000


def clean_ids(values: list[str], what: str) -> list[str]:
    """Stripped, de-duplicated, non-empty values in their first order; raises when none is left."""
    cleaned = list(dict.fromkeys(v.strip() for v in values if v and v.strip()))
    if not cleaned:
        raise InvalidRequestError(f"no {what} given (got {values!r}); send at least one non-empty {what}")
    return cleaned


def required(value: str, what: str) -> str:
    """The stripped value; raises when it is empty."""
    if not value or not value.strip():
        raise InvalidRequestError(f"{what} is empty; send a non-empty {what}")
    return value.strip()
