"""What the fields of a source must be before they reach PostgreSQL: shared by the push routes and the pull queues.

PostgreSQL text cannot hold NUL, UTF-8 cannot encode a lone UTF-16 surrogate (valid JSON: "\\ud800"), and
`modified`/`size` are bigint columns: a value breaking one fails only in the database, where it looks like a transient
error and is retried forever. So does an id longer than a btree index entry can hold (2,704 bytes; every id column
is indexed): ids have a length limit. Ids (users, providers, mimetypes) never contain control characters in
Nextcloud; one that does is refused with its reason. The patterns end in \\Z, not $:
'$' also matches before a trailing newline.
"""

from __future__ import annotations

import re

# 5.0.1+ ("expand the source id regex item part"); accepts every id the older PHP apps send
SOURCE_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+__[a-zA-Z0-9_-]+: [a-zA-Z0-9:-]+\Z")
# the pull queues' references: a content provider's item id may also hold '_' and '.' (harmless for the PHP app)
QUEUE_REFERENCE_RE = re.compile(r"^[a-zA-Z0-9_-]+__[a-zA-Z0-9_-]+: [a-zA-Z0-9:._-]+\Z")
PROVIDER_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+__[a-zA-Z0-9_-]+\Z")
# the PHP app < 5.5 names a provider without its app when an app is disabled (context_chat#258)
BARE_PROVIDER_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+\Z")
# the provider of Nextcloud's files (every other provider is an app's content provider)
FILES_PROVIDER = "files__default"

# an access index row holds a user id and a source id: 255 characters of up to 4 UTF-8 bytes (Nextcloud allows 64)
# plus 512 ASCII ones (the patterns allow only ASCII) stay well under btree's 2,704 bytes
MAX_USER_ID_CHARS = 255
MAX_SOURCE_ID_CHARS = 512
MAX_PROVIDER_ID_CHARS = 512
# how much of a refused value a message quotes
SHOWN_CHARS = 40
MAX_BIGINT = 2**63 - 1
MIN_BIGINT = -(2**63)
NUL_PROBLEM = "must not contain NUL characters (\\u0000)"
SURROGATE_PROBLEM = "must not contain lone UTF-16 surrogates (\\ud800-\\udfff)"
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def php_array_key(value: object) -> object:
    """A user id as the PHP app may send it: PHP makes a numeric array key ("12345") an int, so a reader list built
    with array_keys() (a group share's access list) holds the JSON number 12345; that is the user id "12345"."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def is_valid_source_id(value: str) -> bool:
    return SOURCE_ID_RE.match(value) is not None


def is_valid_provider_id(value: str) -> bool:
    return PROVIDER_ID_RE.match(value) is not None


def length_problem(value: str, limit: int) -> str | None:
    """Why `value` is too long for an index entry, or None (checked where an id is stored: deleting one that long is
    fine, it was never stored)."""
    return f"is {len(value)} characters long; the limit is {limit}" if len(value) > limit else None


def shown(value: str) -> str:
    """`value` quoted for a message, cut after SHOWN_CHARS characters."""
    return repr(value) if len(value) <= SHOWN_CHARS else repr(value[:SHOWN_CHARS]) + "…"


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as PostgreSQL text, or None."""
    if "\x00" in value:
        return NUL_PROBLEM
    return SURROGATE_PROBLEM if _SURROGATE.search(value) else None


def storable_text(value: str) -> str:
    """`value` as PostgreSQL text can hold it: NUL dropped, a lone surrogate replaced by U+FFFD (titles, contents)."""
    return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))


def id_problem(value: str, limit: int = MAX_USER_ID_CHARS) -> str | None:
    """Why `value` cannot be a user id, a provider or a mimetype (NUL, surrogates, control characters, longer than
    `limit`; RFC 6838 mimetypes have at most 255 characters), or None."""
    if problem := text_problem(value):
        return problem
    if found := _CONTROL.search(value):
        return f"must not contain control characters (found {found.group()!r})"
    return length_problem(value, limit)


def fits_bigint(value: int) -> bool:
    return MIN_BIGINT <= value <= MAX_BIGINT


def parse_bigint(text: str) -> int | None:
    """A decimal integer (optionally negative) that fits a PostgreSQL bigint, or None."""
    digits = text.removeprefix("-")
    # the length first: Python refuses to convert more than 4300 digits (a ValueError that is not the sender's 400)
    if not digits.isdecimal() or len(digits) > len(str(MAX_BIGINT)):
        return None
    value = int(text)
    return value if fits_bigint(value) else None
