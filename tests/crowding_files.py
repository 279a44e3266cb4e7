"""The real-Nextcloud case of bench/results/pull_fill_realnc.txt as texts: nine long starter logs, six chunks of 96
tokens each, all nearer a feeding question than the user's own three files, which share none of its words."""

from __future__ import annotations

QUESTION = "sourdough starter feeding flour water"
LOGS = 9
# more than a search round's legs read (48 vector chunks at most): the user's own rank below all of them
LOST_CHUNKS_AT_LEAST = 54

OWN_BREAD = {
    "bakery-visit.md": b"Bakery visit: the baker keeps his levain lively by topping it up with rye meal daily.",
    "bread-notes.md": b"Bread notes: my leaven rises best when I refresh it with wholemeal before bed.",
    "shopping.md": b"Shopping: rye meal and wholemeal for refreshing the leaven, and a jar for the levain.",
}


def starter_log(doc: int) -> bytes:
    """Log `doc`: six paragraphs of feeding notes, a chunk each."""
    days = (
        f"Starter log {doc}, day {day}: fed the sourdough starter {40 + 10 * day} g flour and {40 + 10 * day} g water."
        f" After the feeding the sourdough starter doubled in {3 + day} hours; feeding the starter flour and water"
        f" twice a day keeps the sourdough starter active, and the starter smelled of yoghurt before feeding."
        for day in range(6)
    )
    return "\n\n".join(days).encode()
