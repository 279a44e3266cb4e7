"""What a PostgreSQL error says without the values it may quote, for a route's answer and the app log.

PostgreSQL's text is not safe to show: DETAIL quotes the row a statement refused ("Failing row contains (...)", "Key
(text)=(...) already exists"), CONTEXT the line of a COPY, and a data exception's message the value it could not take
('invalid input syntax for type integer: "..."'), a PL/pgSQL RAISE whatever its trigger wrote, an error about a
statement a function built (EXECUTE) any of that statement's text, and a syntax error the text where the parser
stopped. The class, the SQLSTATE and the schema objects it names are. Every log line, status detail or stored reason
that shows a PostgreSQL error goes through `loggable_message` or `failure_log_line`: one rule (`_may_quote_values`,
and `_shown_first_line` for a syntax error's quote) for all of them.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import psycopg

from quart_app.traceback_text import traceback_text

# SQLSTATE class -> (its condition, what an admin does about it), after PostgreSQL's "Appendix A. Error Codes"
_CLASSES: dict[str, tuple[str, str]] = {
    "08": ("connection exception", "retry once PostgreSQL is reachable"),
    "22": ("data exception", "a value was refused; report it with the app log's line for this request"),
    "23": (
        "integrity constraint violation",
        "a constraint or trigger the app did not create must allow its rows; else report it with the app log's line",
    ),
    "28": ("invalid authorization", "check the database user and password (vectordb.pgvector.connection)"),
    "40": ("transaction rollback", "retry the request"),
    "42": (
        "syntax error or access rule violation",
        "the schema or the database user's privileges are not what this version needs: restart the app so it"
        " migrates the schema, and let its database user own the app's tables",
    ),
    "53": ("insufficient resources", "free disk space or memory on the database server, or lower pgvector.pool_max"),
    "54": ("program limit exceeded", "a value is over a PostgreSQL limit; report it with the app log's line"),
    "55": ("object not in prerequisite state", "retry later"),
    "57": ("operator intervention", "retry once PostgreSQL is back (it was shut down or the statement cancelled)"),
    "58": ("system error", "check the database server's disk and PostgreSQL's log"),
    "P0": (
        "PL/pgSQL raise exception",
        "a trigger or function the app did not create refused the statement; else report it with the app log's line",
    ),
    "XX": ("internal error", "check PostgreSQL's log (logs/postgres.log)"),
}
_UNKNOWN = ("PostgreSQL error", "check PostgreSQL's log")
# their message quotes the value refused (22) or is any text a PL/pgSQL RAISE wrote (P0)
_MESSAGE_QUOTES_VALUES = frozenset({"22", "P0"})
# PL/pgSQL's RAISE and ASSERT (pl_exec.c) write any text under any SQLSTATE a trigger names (USING ERRCODE = ...)
_RAISING_FUNCTIONS = frozenset({"exec_stmt_raise", "exec_stmt_assert"})
_OWN_CODE = Path(__file__).resolve().parents[1]
# a syntax error quotes the statement's text: 'at or near "<token>"', an unterminated string's whole rest, a tsquery's
# input. A statement built from data (a trigger's EXECUTE of a chunk's text) quotes the data, and a token that is an
# SQL keyword is no safer ("with", "order", "off" are a sentence's words too), so every quote is withheld; the app's
# own statements are located by the log line's file and line instead
_SYNTAX_ERROR = "42601"
_STATEMENT_TEXT_WITHHELD = "(the text it quotes withheld: it may be a value)"


def _condition(exc: psycopg.Error) -> tuple[str, str]:
    sqlstate = exc.sqlstate or ""
    return _CLASSES.get(sqlstate[:2], _UNKNOWN)


def _objects(exc: psycopg.Error) -> str:
    """The schema objects PostgreSQL names in its error fields: identifiers, never values."""
    diag = exc.diag
    named = [
        ("table", diag.table_name),
        ("column", diag.column_name),
        ("constraint", diag.constraint_name),
        ("type", diag.datatype_name),
    ]
    return ", ".join(f"{kind} {name}" for kind, name in named if name)


def failure_summary(exc: psycopg.Error) -> str:
    """`UndefinedTable (SQLSTATE 42P01, syntax error or access rule violation; table x)`: no value of any row."""
    condition, _fix = _condition(exc)
    objects = _objects(exc)
    state = f"SQLSTATE {exc.sqlstate}" if exc.sqlstate else "no SQLSTATE: raised by the client library"
    return f"{type(exc).__name__} ({state}, {condition}{'; ' + objects if objects else ''})"


def failure_answer(exc: psycopg.Error, what: str) -> str:
    """A route's error text for `exc` while doing `what`: the failure summary and what to do."""
    _condition_name, fix = _condition(exc)
    return f"{what} failed in the database: {failure_summary(exc)}; {fix}"


def failure_log_line(exc: psycopg.Error) -> str:
    """The summary, PostgreSQL's first line unless it may quote a value, and where in the app the statement ran."""
    message = "" if _may_quote_values(exc) else f": {_shown_first_line(exc)}"
    return f"{failure_summary(exc)}{message}{_where(exc)}"


def loggable_message(exc: BaseException) -> str:
    """What of `exc`'s message a log line, a status or a stored reason may show: its first line, or for a PostgreSQL
    error whose message may quote a value (a data exception, any RAISE) its SQLSTATE and condition instead."""
    if isinstance(exc, psycopg.Error) and _may_quote_values(exc):
        condition, _fix = _condition(exc)
        return f"SQLSTATE {exc.sqlstate}, {condition}; PostgreSQL's message withheld: it may quote a value"
    return _shown_first_line(exc) if isinstance(exc, psycopg.Error) else _first_line(exc)


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> str:
    """Log `exc`, the failure of `what` (a route's `POST /query`, a poller's `task 7`), and return what of it may be
    shown (an answer, a task's errorMessage). A PostgreSQL error, or one raised from it, gets no traceback: that would
    print PostgreSQL's whole text (a DETAIL, a CONTEXT quoting a trigger's statement, a RAISE quoting a chunk)."""
    database_error = database_error_of(exc)
    if database_error is None:
        logger.error("%s failed: %s: %s", what, type(exc).__name__, exc, exc_info=exc)
        return str(exc)
    if exc is database_error:
        logger.error("%s failed in the database: %s", what, failure_log_line(database_error))
        return failure_answer(database_error, what)
    logger.error("%s failed: %s: %s; %s", what, type(exc).__name__, exc, failure_log_line(database_error))
    return str(exc)


def database_error_of(exc: BaseException) -> psycopg.Error | None:
    """`exc` if it is a PostgreSQL error, else the one it was raised from or while handling, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, psycopg.Error):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _may_quote_values(exc: psycopg.Error) -> bool:
    """The one rule of what PostgreSQL's first line may be logged: not a data exception's, not a RAISE's, and not one
    about a statement a function built (a trigger's EXECUTE: `column "<a chunk's words>" does not exist`)."""
    quoted = (exc.sqlstate or "")[:2] in _MESSAGE_QUOTES_VALUES or exc.diag.source_function in _RAISING_FUNCTIONS
    # PostgreSQL names the statement a function built as the error's internal query
    return quoted or exc.diag.internal_query is not None


def _shown_first_line(exc: psycopg.Error) -> str:
    """PostgreSQL's first line, a syntax error's up to the statement text it quotes: `syntax error at or near`."""
    line = _first_line(exc)
    if exc.sqlstate != _SYNTAX_ERROR or '"' not in line:
        return line
    before_the_quote = line.split('"', 1)[0].rstrip()
    return f"{before_the_quote} {_STATEMENT_TEXT_WITHHELD}"


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (PostgreSQL adds DETAIL/HINT lines), or its class name when empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _where(exc: BaseException) -> str:
    own = [frame for frame in traceback.extract_tb(exc.__traceback__) if Path(frame.filename).is_relative_to(_OWN_CODE)]
    if not own:
        return ""
    frame = own[-1]
    return f", at {Path(frame.filename).relative_to(_OWN_CODE.parent)}:{frame.lineno} in {frame.name}"


def loggable_traceback(exc: BaseException) -> str:
    """The traceback of `exc` and the exceptions it came from, as Python prints it, but each PostgreSQL error's line
    is its `loggable_message`: Python's would print its whole text (DETAIL, CONTEXT)."""
    return traceback_text(exc, _loggable_exception_line)


def _loggable_exception_line(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        return f"{type(exc).__module__}.{type(exc).__qualname__}: {loggable_message(exc)}\n"
    return "".join(traceback.format_exception_only(exc))
