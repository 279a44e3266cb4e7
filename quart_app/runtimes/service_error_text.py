"""What an embedding service's error answer is stored and shown as: its status, a fixed explanation, and at most a
short reason of its own without the texts sent.

The message goes to chunks.last_error, GET /status, `ccb index` and the pull-mode error reports. Our embedder and
text-embeddings-inference do not repeat the input, but an OpenAI-compatible server may ("Input 'Dear Bob, ...' is too
long"), so the reason is its first line, cut short, with each quoted string and each run of two or more words also
found in the texts sent withheld.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

REASON_CHARS = 120
TEXT_WITHHELD = "<text withheld>"
_EXPLANATIONS = {
    400: "the service refused the request or its texts",
    401: "the service refused the credentials",
    403: "the service refused access with these credentials",
    404: "the service has no such endpoint or model",
    408: "the service timed out reading the request",
    413: "the request is larger than the service takes",
    422: "the service could not process the texts (often: longer than the model's maximum input)",
    429: "the service is limiting the rate of requests",
    500: "the service failed with an internal error",
    502: "the gateway before the service could not reach it",
    503: "the service is unavailable (starting, overloaded or down)",
    504: "the gateway before the service timed out waiting for it",
}
# a quoted string ('...' or "..."), not an apostrophe inside a word ("model's")
_QUOTED = re.compile(r"""(?<![\w'"])(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")
_WORD = re.compile(r"\w+")


def explanation(status: int) -> str:
    """What an answer's status says about the request, in words that never come from the service."""
    if status in _EXPLANATIONS:
        return _EXPLANATIONS[status]
    return "the service failed" if status >= 500 else "the service refused the request"


def redacted_reason(reason: str, sent: Sequence[str]) -> str:
    """The service's own reason: its first line, quoted strings and runs of the texts' words withheld, cut short."""
    lines = reason.strip().splitlines()
    if not lines:
        return ""
    vocabulary = {word.casefold() for text in sent for word in _WORD.findall(text)}
    pieces: list[str] = []
    position = 0
    for quoted in _QUOTED.finditer(lines[0]):
        pieces += [_withhold_runs(lines[0][position : quoted.start()], vocabulary), _withheld_quote(quoted, vocabulary)]
        position = quoted.end()
    first = "".join(pieces) + _withhold_runs(lines[0][position:], vocabulary)
    return first if len(first) <= REASON_CHARS else first[:REASON_CHARS] + "…"


def _withheld_quote(quoted: re.Match[str], vocabulary: set[str]) -> str:
    # a field name ('input') stays; a quote holding any of the texts' words is the texts
    words = _WORD.findall(quoted.group())
    return TEXT_WITHHELD if any(word.casefold() in vocabulary for word in words) else quoted.group()


def _withhold_runs(text: str, vocabulary: set[str]) -> str:
    """`text` with each run of two or more consecutive words that all occur in the texts sent withheld."""
    pieces: list[str] = []
    position = 0
    run: list[re.Match[str]] = []
    for word in [*_WORD.finditer(text), None]:
        if word is not None and word.group().casefold() in vocabulary:
            run.append(word)
            continue
        if len(run) >= 2:
            pieces += [text[position : run[0].start()], TEXT_WITHHELD]
            position = run[-1].end()
        run = []
    return "".join(pieces) + text[position:]
