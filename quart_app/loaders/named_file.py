"""A file's path that messages name as the app names the file: the document's title, not the spool file or the
descriptor it is read through."""

from pathlib import Path, PosixPath


class NamedFile(PosixPath):
    """A path whose `name` (all that error messages and logs show of it) is the name given, when one is."""

    display_name = ""

    @property
    def name(self) -> str:
        return self.display_name or super().name


def named_file(path: Path | str, name: str) -> NamedFile:
    """`path`, named `name` in messages (its own name when `name` is empty)."""
    named = NamedFile(path)
    named.display_name = name
    return named
