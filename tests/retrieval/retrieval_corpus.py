"""Real text for retrieval tests: module docstrings of the Python standard library (read with ast, never imported)
plus a few hand-written target documents with known answers."""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

TRUSTED_DOMAINS = (
    "Nextcloud: trusted domains",
    "The trusted_domains array in config/config.php lists every hostname under which the server may be reached."
    " Requests whose Host header is not in this list are refused with the page 'Access through untrusted domain'."
    " Add the public name of the server and, behind a reverse proxy, the name the proxy uses.",
)
FILES_SCAN = (
    "Nextcloud: rescanning files",
    "When files are copied into the data directory directly, the file cache does not know them. Run"
    " occ files:scan --all as the web server user to rescan every user's files, or pass a user id to limit the scan.",
)
URLAUB = (
    "Personalhandbuch: Urlaub",
    "Mitarbeiterinnen und Mitarbeiter beantragen ihren Urlaub spätestens vier Wochen im Voraus über das"
    " Personalportal. Die Teamleitung genehmigt den Antrag innerhalb von fünf Arbeitstagen.",
)
BACKUPS = (
    "Operations: nightly backups",
    "Every night at two o'clock the database is dumped with pg_dump and the archive is copied to the off-site"
    " storage box; dumps are kept for thirty days before they are pruned.",
)


def stdlib_docstrings(count: int, min_chars: int = 200) -> list[tuple[str, str]]:
    """(module name, first 1200 characters of its docstring) for `count` stdlib modules, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: list[tuple[str, str]] = []
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if "site-packages" in path.parts:
            continue
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        if doc and len(doc) >= min_chars:
            name = path.parent.name if path.name == "__init__.py" else str(path.relative_to(root).with_suffix(""))
            found.append((name, " ".join(doc.split())[:1200]))
        if len(found) == count:
            break
    return found
