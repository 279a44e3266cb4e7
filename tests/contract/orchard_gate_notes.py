"""Push mode's crowding case: anna's notes on the orchard gate code, shared with bert and then unshared (the PHP app
told the backend nothing), rank above everything bert keeps; his own list on the gate ranks below them."""

from __future__ import annotations

from contract_kit import SourcePart

BERTS_LIST = SourcePart(
    "files__default: 13", b"Bert's March list: oil the hinges of the orchard gate.", user_ids=["bert"], title="list.md"
)


def gate_notes(count: int) -> list[SourcePart]:
    """anna's first `count` gate-code notes, each readable by anna and bert (files__default: 100, 101, …)."""
    notes = []
    for n in range(count):
        text = f"Orchard gate code, note {n}: the orchard gate code is {4700 + n}; the code opens the orchard gate."
        notes.append(
            SourcePart(
                f"files__default: {100 + n}", text.encode(), user_ids=["anna", "bert"], title=f"anna/gate-code-{n}.md"
            )
        )
    return notes
