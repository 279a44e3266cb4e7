"""EPUB via the stdlib zipfile + defusedxml for the package files and the HTML extractor for chapters.

No EPUB library is needed: the container/OPF/spine structure is small and reading it ourselves avoids a
dependency (upstream's epub2txt is unmaintained).
"""

import posixpath
import zipfile
from pathlib import Path
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring

from .errors import CorruptDocumentError
from .html_text import html_to_text
from .limits import ParseLimits
from .text_decoding import decode_bytes
from .zip_guard import check_zip

EPUB = "application/epub+zip"
# the EPUB standard's one fixed member: it names the package (OPF) file
_CONTAINER = "META-INF/container.xml"
_CONTAINER_NS = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF_NS = "{http://www.idpf.org/2007/opf}"
_DC_NS = "{http://purl.org/dc/elements/1.1/}"
_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html"})


def _read_xml(archive: zipfile.ZipFile, name: str, missing: str) -> Element:
    """The XML of the member `name`; CorruptDocumentError with the message `missing` when the book has none."""
    try:
        return fromstring(archive.read(name))  # type: ignore[no-any-return]
    except KeyError:
        raise CorruptDocumentError(missing) from None


def _spine_documents(archive: zipfile.ZipFile, path: Path) -> tuple[str, list[str]]:
    container = _read_xml(
        archive, _CONTAINER, f"{path.name} ({EPUB}): the book has no {_CONTAINER!r}; it is not a valid EPUB"
    )
    rootfile = container.find(f".//{_CONTAINER_NS}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise CorruptDocumentError(f"{path.name} ({EPUB}): {_CONTAINER} names no package (OPF) file")
    opf_name = str(rootfile.get("full-path"))
    # the package file by its role, never its name: whoever made the book chose it, text included
    opf = _read_xml(
        archive,
        opf_name,
        f"{path.name} ({EPUB}): the package (OPF) file {_CONTAINER} names is not in the book; it is not a valid EPUB "
        "(export it again from the application that made it)",
    )
    base = posixpath.dirname(opf_name)
    manifest = {
        item.get("id"): (item.get("href", ""), item.get("media-type", "")) for item in opf.iter(f"{_OPF_NS}item")
    }
    names: list[str] = []
    for ref in opf.iter(f"{_OPF_NS}itemref"):
        href, media_type = manifest.get(ref.get("idref"), ("", ""))
        if href and media_type in _HTML_TYPES:
            names.append(posixpath.normpath(posixpath.join(base, unquote(href))))
    title = opf.find(f".//{_DC_NS}title")
    return (title.text or "").strip() if title is not None else "", names


def load_epub(path: Path, limits: ParseLimits) -> str:
    """Book title, then the text of each chapter in reading (spine) order."""
    check_zip(path, EPUB, limits)
    with zipfile.ZipFile(path) as archive:
        title, names = _spine_documents(archive, path)
        chapters = [title] if title else []
        present = set(archive.namelist())
        for name in names:
            if name in present:
                chapters.append(html_to_text(decode_bytes(archive.read(name), path, EPUB), include_title=False))
    return "\n\n".join(chapter.strip() for chapter in chapters if chapter.strip())
