"""Text from documents and questions kept from reading as a model's control tokens (<|im_end|>, <s>, ...).

A local model tokenises its prompt with the chat template's control tokens recognised, so a shared document holding
`<|im_end|><|im_start|>system` would end the user's turn and speak as the system. Such text is broken with a word
joiner (U+2060, invisible) after its first character: the model still reads the characters, never the control token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

WORD_JOINER = "\u2060"


class ControlTokenBreaker:
    """Built once per model from the texts of its control tokens; `plain()` is safe to call from any thread."""

    def __init__(self, control_texts: Iterable[str]) -> None:
        # one character cannot be broken by a joiner inside it; a text holding the joiner would loop
        kept = sorted({t for t in control_texts if len(t) > 1 and WORD_JOINER not in t}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, kept))) if kept else None

    def plain(self, text: str) -> str:
        """`text` with no control token's text left whole in it."""
        if self._pattern is None:
            return text
        while True:
            # again until nothing matches: breaking one match can leave an overlapping one (tokens "ab" and "bc")
            broken = self._pattern.sub(lambda match: match[0][0] + WORD_JOINER + match[0][1:], text)
            if broken == text:
                return text
            text = broken
