"""What an embedding service's error answer is stored and shown as: its status, a fixed explanation, and at most a
short reason of its own without the texts sent.

The message goes to chunks.last_error, GET /status, `ccb index` and the pull-mode error reports. Our embedder and
text-embeddings-inference do not repeat the input, but an OpenAI-compatible server may ("Input 'Dear Bob, ...' is too
long", "unknown token Jürgen"), so the reason is its first line, cut short, with withheld: each quoted string and each
run of two or more words also found in the texts sent; a single such word unless it is one that error reasons are made
of (REASON_WORDS) or a number of at most four digits (a count, an index): a name, an account number; and any email
address or number of seven or more digits, found in the texts or not (a service may have changed their case or form).
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
_QUOTED = r"""(?<![\w'"])(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
# an email address or a number of seven or more digits (a phone, an account): never a service's own words
_IDENTIFYING = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?<!\w)\d{7,}(?!\w)"
_IDENTIFYING_ANYWHERE = re.compile(_IDENTIFYING)
_SPANS = re.compile(rf"(?P<quote>{_QUOTED})|(?P<identifying>{_IDENTIFYING})")
_WORD = re.compile(r"\w+")
# a number this short in a reason is a count, a size or an index, whether or not a text holds it too
_ORDINARY_DIGITS = 4
# the words embedding services' error reasons are made of (OpenAI, vLLM, text-embeddings-inference, Ollama, llama.cpp,
# LocalAI, ours): one of them alone is the service speaking even when a text sent holds it too
_REASON_WORDS_TEXT = """
    a about after again all allowed an and any api are array as at auth authentication available base64 batch batches
    be been before body but by byte bytes can cannot character characters completion context could count credentials
    denied dimension dimensions do does each else embed embedding embeddings empty encoding endpoint equal error errors
    every exceed exceeded exceeding exceeds expected failed failure false field fields float for format found from
    generation get given got greater has have holds however if in index input inputs instead int integer internal
    invalid is it item items its json key larger later least length less limit limits list load loaded long longer
    max maximum may method min minimum missing model models more most must no none not null number object of on one
    only or out over overloaded param parameter parameters passage path per please position process processing prompt
    query quota rate reduce request requested requests required retry sequence sequences server service set should
    size smaller split string strings supported than that the this timed timeout to token tokenized tokens too total
    true truncate truncated truncation type types unauthorized unavailable unknown unsupported use utf valid validation
    value values vocabulary was were when with you your
"""
REASON_WORDS = frozenset(_REASON_WORDS_TEXT.split())


def explanation(status: int) -> str:
    """What an answer's status says about the request, in words that never come from the service."""
    if status in _EXPLANATIONS:
        return _EXPLANATIONS[status]
    return "the service failed" if status >= 500 else "the service refused the request"


def redacted_reason(reason: str, sent: Sequence[str]) -> str:
    """The service's own reason: its first line without what may be the texts' or identify someone, cut short."""
    lines = reason.strip().splitlines()
    if not lines:
        return ""
    vocabulary = {word.casefold() for text in sent for word in _WORD.findall(text)}
    pieces: list[str] = []
    position = 0
    for span in _SPANS.finditer(lines[0]):
        withheld = _withheld_quote(span, vocabulary) if span["quote"] else TEXT_WITHHELD
        pieces += [_withhold_words(lines[0][position : span.start()], vocabulary), withheld]
        position = span.end()
    first = "".join(pieces) + _withhold_words(lines[0][position:], vocabulary)
    return first if len(first) <= REASON_CHARS else first[:REASON_CHARS] + "…"


def _withheld_quote(quoted: re.Match[str], vocabulary: set[str]) -> str:
    # a field name ('input') stays; a quote holding any of the texts' words is the texts
    words = _WORD.findall(quoted.group())
    texts = any(word.casefold() in vocabulary for word in words)
    return TEXT_WITHHELD if texts or _IDENTIFYING_ANYWHERE.search(quoted.group()) else quoted.group()


def _ordinary(word: str) -> bool:
    return word.casefold() in REASON_WORDS or (word.isdecimal() and len(word) <= _ORDINARY_DIGITS)


def _withhold_words(text: str, vocabulary: set[str]) -> str:
    """`text` with each run of consecutive words that all occur in the texts sent withheld when it is two or more
    words long or holds a word that is not ordinary in a reason."""
    pieces: list[str] = []
    position = 0
    run: list[re.Match[str]] = []
    for word in [*_WORD.finditer(text), None]:
        if word is not None and word.group().casefold() in vocabulary:
            run.append(word)
            continue
        if len(run) >= 2 or (run and not _ordinary(run[0].group())):
            pieces += [text[position : run[0].start()], TEXT_WITHHELD]
            position = run[-1].end()
        run = []
    return "".join(pieces) + text[position:]
