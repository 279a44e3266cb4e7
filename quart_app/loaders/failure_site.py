"""Where a parse failed, named for the admin without what the exception says: a library's message can quote the file
(openpyxl's float() shows the cell, defusedxml the entity), so a worker's log names the exception's class, the frame
that raised it and the innermost frame of our code that led there, never its message."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from types import FrameType

# the appliance's own packages; every other frame is a library's (or a plugin loader's)
_OWN_PACKAGES = frozenset({"quart_app", "appliance"})


@dataclass(frozen=True, slots=True)
class FailureSite:
    """An exception's class and where it came from, each frame as "package/module.py:line in function"."""

    exception: str
    raised_at: str
    # the innermost frame of our code on the way; "" when it raised in our code or no frame of ours is on the way
    ours: str = ""

    def __str__(self) -> str:
        return f"{self.exception} raised at {self.raised_at}" + (f", called from {self.ours}" if self.ours else "")


def _module_name(frame: FrameType) -> str:
    # a module run with -m is "__main__" by name; its spec keeps the name it is imported by
    spec = frame.f_globals.get("__spec__")
    name = getattr(spec, "name", None) or frame.f_globals.get("__name__")
    return name if isinstance(name, str) else ""


def _frame_text(frame: FrameType, line: int) -> str:
    """The frame as "pypdf/_reader.py:123 in read": the file's path below its import root, not the machine's."""
    path = PurePath(frame.f_code.co_filename)
    module = _module_name(frame)
    depth = module.count(".") + 1 + (path.name == "__init__.py") if module and module != "__main__" else 1
    return f"{PurePath(*path.parts[-depth:])}:{line} in {frame.f_code.co_name}"


def _is_ours(frame: FrameType) -> bool:
    return _module_name(frame).partition(".")[0] in _OWN_PACKAGES


def exception_name(exc: BaseException) -> str:
    """The class as a traceback names it: bare for a builtin, with its module for a library's."""
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def failure_site(exc: BaseException) -> FailureSite:
    """Where `exc` was raised and the innermost frame of ours it passed through, from its traceback."""
    frames = list(traceback.walk_tb(exc.__traceback__))
    if not frames:
        return FailureSite(exception_name(exc), "an unknown place (no traceback)")
    innermost_frame, innermost_line = frames[-1]
    ours = next(((f, line) for f, line in reversed(frames) if _is_ours(f)), None)
    called_from = "" if ours is None or ours[0] is innermost_frame else _frame_text(*ours)
    return FailureSite(exception_name(exc), _frame_text(innermost_frame, innermost_line), called_from)


def loader_name(loader: Callable[..., object]) -> str:
    """A loader as "module:function", as the registry and `extra_loaders` spell it."""
    module = getattr(loader, "__module__", None) or "?"
    return f"{module}:{getattr(loader, '__qualname__', type(loader).__qualname__)}"
