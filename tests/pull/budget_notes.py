"""The pull fill tests' crowding case: alice's notes on the Berlin office budget rank above her other files, and she
loses them (an unshare on Nextcloud 34 that the PHP app does not queue)."""

from __future__ import annotations

from nextcloud_pull_fake import FakePullNextcloud

BUDGET_QUESTION = "Berlin office budget"
# hers, above every note
BEST = b"Berlin budget: the Berlin office budget for travel is 12000 euros this year."
# far from the question: only the vector leg ranks it, last
TENT = b"Tent repair guide: patch the fly sheet and wax the zipper."


def add_lost_notes(nextcloud: FakePullNextcloud, count: int) -> list[int]:
    """`count` budget notes of alice's (files/notes/note<i>.txt), to be lost; their file ids."""
    return [nextcloud.add_file(["alice"], f"files/notes/note{i}.txt", _lost_note(i).encode()) for i in range(count)]


def _lost_note(i: int) -> str:
    return f"Berlin budget note {i}: the Berlin office budget review lists {1000 + i} euros for item {i}."
