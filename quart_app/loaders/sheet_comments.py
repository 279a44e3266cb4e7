"""Cell comments (notes) of spreadsheets, as lines read after their cell's row: "Comment on B2 by Alice: text".

openpyxl's read-only mode loads no comments, and the ODS reader took a cell's annotation for part of its value.
"""

import logging
import posixpath
import re
import zipfile
from collections import defaultdict
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from openpyxl.utils import coordinate_to_tuple, get_column_letter

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_PACKAGE_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_COMMENTS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments"
_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
# Excel's note for older versions in front of a threaded comment's text, and its placeholder author
_THREAD_NOTICE = re.compile(r"\[Threaded comment\].*?\bComment:\s*", re.DOTALL)
_THREAD_AUTHOR = re.compile(r"tc=\{[0-9A-Fa-f-]+\}")

RowComments = dict[int, list[str]]
logger = logging.getLogger(__name__)


def comment_line(reference: str, author: str, text: str) -> str:
    text = " ".join(text.split())
    author = " ".join(author.split())
    return f"Comment on {reference} by {author}: {text}" if author else f"Comment on {reference}: {text}"


def _comment_parts(archive: zipfile.ZipFile, worksheet: str, sheet: str) -> list[str]:
    """The comment parts the worksheet part relates to, as archive names."""
    folder, name = posixpath.split(worksheet)
    try:
        rels = fromstring(archive.read(f"{folder}/_rels/{name}.rels"))
    except KeyError:
        return []
    except (ParseError, DefusedXmlException) as exc:
        logger.warning("skipped the damaged relationships of %s: %s", sheet, type(exc).__name__)
        return []
    return [
        target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        for rel in rels.iter(f"{_PACKAGE_RELS}Relationship")
        if rel.get("Type") == _COMMENTS and rel.get("TargetMode") != "External" and (target := rel.get("Target", ""))
    ]


def xlsx_comments(archive: zipfile.ZipFile, worksheet: str, sheet: str) -> RowComments:
    """The comment lines of a worksheet part ('xl/worksheets/sheet1.xml') by row number, in column order. A warning
    names the sheet by its place (`sheet`, "sheet 2 of 3"), never a part by its name: whoever made the file chose the
    names, text included."""
    found: list[tuple[int, int, str]] = []
    parts = _comment_parts(archive, worksheet, sheet)
    for number, part in enumerate(parts, 1):
        try:
            comments = fromstring(archive.read(part))
        except KeyError:
            continue
        except (ParseError, DefusedXmlException) as exc:  # the cells are still the workbook
            which = "comments part" if len(parts) == 1 else f"comments part {number} of {len(parts)}"
            logger.warning("skipped the damaged %s of %s: %s", which, sheet, type(exc).__name__)
            continue
        authors = [author.text or "" for author in comments.iter(f"{_MAIN}author")]
        for comment in comments.iter(f"{_MAIN}comment"):
            reference = comment.get("ref", "")
            try:
                row, column = coordinate_to_tuple(reference)
            except (ValueError, TypeError):
                continue
            text = "".join(t.text or "" for t in comment.iter(f"{_MAIN}t"))
            index = int(comment.get("authorId", "-1")) if comment.get("authorId", "").isdigit() else -1
            author = authors[index] if 0 <= index < len(authors) else ""
            if _THREAD_AUTHOR.fullmatch(author):
                author, text = "", _THREAD_NOTICE.sub("", text, count=1)
            if text.strip():
                found.append((row, column, comment_line(reference, author, text)))
    by_row: RowComments = defaultdict(list)
    for row, _, line in sorted(found):
        by_row[row].append(line)
    return by_row


def ods_annotation(annotation: Any, row: int, column: int) -> str:
    """An office:annotation of the cell at `row`, `column` (1-based) as a comment line; "" when it has no text."""
    text = " ".join("".join(paragraph.itertext()) for paragraph in annotation.iter(f"{_TEXT}p"))
    if not text.strip():
        return ""
    creator = annotation.find(_DC_CREATOR)
    author = creator.text or "" if creator is not None else ""
    return comment_line(f"{get_column_letter(column)}{row}", author, text)
