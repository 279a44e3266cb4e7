"""E-mail: .eml via the stdlib email parser, Outlook .msg via extract-msg. Attachments are not indexed."""

import email
import email.policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import extract_msg
import olefile

from .errors import CorruptDocumentError, library_failure
from .html_text import html_to_text
from .limits import ParseLimits
from .text_decoding import decode_bytes

EML = "message/rfc822"
MSG = "application/vnd.ms-outlook"
_HEADERS = ("Subject", "From", "To", "Cc", "Date")


def _header_block(values: dict[str, Any]) -> str:
    lines = [f"{name}: {' '.join(str(value).split())}" for name, value in values.items() if value]
    return "\n".join(lines)


def _part_text(part: Message, path: Path) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset()
    try:
        # get_content() would decode with errors='replace': 8-bit text labelled us-ascii (no charset) or utf-8 lost
        # every accented letter to U+FFFD
        text = data.decode(charset) if charset else decode_bytes(data, path, EML)
    except (LookupError, UnicodeDecodeError):  # unknown or lying charset: detect it from the bytes
        text = decode_bytes(data, path, EML)
    return html_to_text(text, include_title=False) if part.get_content_subtype() == "html" else text


def _header_value(message: EmailMessage, name: str, charsets: list[str], path: Path) -> str | None:
    """The header as text; raw 8-bit bytes (no RFC 2047 words) are read in UTF-8, the mail's charset, or a guess."""
    raw = next((value for key, value in message.raw_items() if key.lower() == name.lower()), None)
    if raw is None:
        return None
    # the parser keeps undecodable bytes as surrogates and the header classes turned every non-UTF-8 one into U+FFFD
    data = str(raw).encode("ascii", "surrogateescape")
    if data.isascii():
        return str(message[name])
    for charset in ("utf-8", *charsets):
        try:
            text = data.decode(charset)
            break
        except (LookupError, UnicodeDecodeError):
            continue
    else:
        try:
            text = decode_bytes(data, path, EML)
        except CorruptDocumentError:  # bytes no charset explains: one bad header must not refuse the mail
            text = data.decode("utf-8", "replace")
    return str(email.policy.default.header_factory(name, text))


def load_eml(path: Path, limits: ParseLimits) -> str:
    """Main headers, then the plain-text body (or the HTML body as text when there is no plain one)."""
    with path.open("rb") as fh:
        message = email.message_from_binary_file(fh, policy=email.policy.default)
    if not isinstance(message, EmailMessage):  # pragma: no cover - policy.default always builds EmailMessage
        raise CorruptDocumentError(f"{path.name} ({EML}): not an e-mail message")
    if not message.keys():
        raise CorruptDocumentError(
            f"{path.name}: declared as {EML!r} but it has no mail headers; fix the file or its mimetype"
        )
    body_part = message.get_body(preferencelist=("plain", "html"))
    # mailers that write raw 8-bit headers write them in the charset of the body
    charsets = [
        charset for part in (body_part, message) if part is not None and (charset := part.get_content_charset())
    ]
    headers = _header_block({name: _header_value(message, name, charsets, path) for name in _HEADERS})
    body = _part_text(body_part, path) if body_part is not None else ""
    return f"{headers}\n\n{body}"


def _string_property(item: Any, prop_id: str) -> str | None:
    getter = getattr(item, "getStringStream", None)
    return getter(f"__substg1.0_{prop_id}") if getter is not None else None


def load_msg(path: Path, limits: ParseLimits) -> str:
    """Outlook item: subject, sender, recipients, date, then its body (HTML body as text if no plain body)."""
    if not olefile.isOleFile(str(path)):
        raise CorruptDocumentError(
            f"{path.name}: declared as {MSG!r} but it is not an Outlook (OLE2) .msg file; fix the file or its mimetype"
        )
    try:
        item = extract_msg.openMsg(str(path), delayAttachments=True)
    except extract_msg.exceptions.ExMsgBaseException as exc:
        raise CorruptDocumentError(
            f"{path.name} ({MSG}): extract-msg cannot read it ({library_failure(exc)})"
        ) from None
    try:
        headers = _header_block(
            {
                "Subject": getattr(item, "subject", None),
                "From": getattr(item, "sender", None),
                # without a recipient table the display strings (PR_DISPLAY_TO/CC) still name the recipients
                "To": getattr(item, "to", None) or _string_property(item, "0E04"),
                "Cc": getattr(item, "cc", None) or _string_property(item, "0E03"),
                "Date": getattr(item, "date", None),
            }
        )
        body = getattr(item, "body", None) or ""
        if not body.strip():
            html = getattr(item, "htmlBody", None)
            if html:
                body = html_to_text(decode_bytes(html, path, MSG), include_title=False)
    finally:
        item.close()
    return f"{headers}\n\n{body}"
