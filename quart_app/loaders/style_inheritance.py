"""A style property set on a style or inherited from the style it is based on (.docx w:basedOn, ODF
style:parent-style-name)."""

from collections.abc import Hashable, Mapping
from typing import TypeVar

Name = TypeVar("Name", bound=Hashable)
Value = TypeVar("Value")


def inherited(own: Mapping[Name, Value | None], parents: Mapping[Name, Name]) -> dict[Name, Value]:
    """Each style's value (`own`: None where the style does not set it) or else its nearest ancestor's; styles where
    neither sets it are left out."""
    resolved: dict[Name, Value] = {}
    for start, value in own.items():
        current, seen = start, {start}
        # a chain of parents may loop in a damaged file: it ends at the first style seen twice
        while value is None and (parent := parents.get(current)) is not None and parent in own and parent not in seen:
            current = parent
            seen.add(current)
            value = own[current]
        if value is not None:
            resolved[start] = value
    return resolved
