"""Decompression-bomb check for zip-based formats, run before any library opens the archive."""

import zipfile
from pathlib import Path

import olefile

from .errors import CorruptDocumentError, DecompressionBombError, EncryptedDocumentError
from .limits import MIB, ParseLimits

# members smaller than this cannot hurt whatever their ratio (tiny XML parts compress very well)
_RATIO_FLOOR_BYTES = 1 * MIB


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _size_text(size: int) -> str:
    """A member's size as an admin reads it: bytes, KiB or MiB."""
    if size < 1024:
        return f"{size} bytes"
    return f"{size / 1024:.0f} KiB" if size < MIB else f"{size / MIB:.0f} MiB"


def _refuse_ole_container(path: Path, mimetype: str) -> None:
    """Password-protected OOXML files are OLE containers holding an EncryptedPackage, not zips."""
    with path.open("rb") as fh:
        if fh.read(len(_OLE_MAGIC)) != _OLE_MAGIC:
            return
    try:
        with olefile.OleFileIO(str(path)) as ole:
            encrypted = ole.exists("EncryptedPackage")
    except OSError:
        encrypted = False
    if encrypted:
        raise EncryptedDocumentError(
            f"{path.name} ({mimetype}): the document is password-protected; "
            "remove the password in the office application and upload it again"
        )
    raise CorruptDocumentError(
        f"{path.name}: declared as {mimetype!r} but it is a legacy binary Office file; "
        "save it in the modern format (.docx/.xlsx/.pptx) or fix the declared mimetype"
    )


def check_zip(path: Path, mimetype: str, limits: ParseLimits) -> None:
    """Refuse archives whose declared sizes exceed the limits; zipfile enforces the declared sizes when reading."""
    _refuse_ole_container(path, mimetype)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptDocumentError(
            f"{path.name}: declared as {mimetype!r} but it is not a readable zip archive ({exc}); "
            "check the file's type or re-save it"
        ) from None
    if len(members) > limits.max_zip_members:
        raise DecompressionBombError(
            f"{path.name} ({mimetype}): the archive has {len(members)} members, more than "
            f"max_zip_members={limits.max_zip_members}; raise the limit if this file is legitimate"
        )
    total = 0
    # a member by its place in the archive, never its name: whoever made the archive chose the name, text included
    for number, member in enumerate(members, 1):
        which = f"archive member {number} of {len(members)}"
        if member.flag_bits & 0x1:
            raise EncryptedDocumentError(
                f"{path.name} ({mimetype}): {which} is encrypted; remove the password protection and upload it again"
            )
        total += member.file_size
        if member.file_size >= _RATIO_FLOOR_BYTES:
            ratio = member.file_size / max(member.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise DecompressionBombError(
                    f"{path.name} ({mimetype}): {which} expands {ratio:.0f}x ({_size_text(member.compress_size)} to "
                    f"{_size_text(member.file_size)}), above max_compression_ratio={limits.max_compression_ratio:g}; "
                    "the file looks like a zip bomb (raise the limit if it is legitimate)"
                )
    if total > limits.max_uncompressed_mb * MIB:
        raise DecompressionBombError(
            f"{path.name} ({mimetype}): the archive expands to {total // MIB} MiB, above "
            f"max_uncompressed_mb={limits.max_uncompressed_mb}; raise the limit if this file is legitimate"
        )
