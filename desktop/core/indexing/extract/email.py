"""E-mail: a message (.eml) or a mailbox (.mbox), one section per message.

A message's text opens with its From, To, Cc, Date and Subject lines, then the body (the
text/plain part, else the text/html part through the HTML extractor), then a line naming its
attachments. The heading is "<Subject> (<From>, <Date>)". An unknown or wrong charset never
fails a message: the shared detector decodes the text instead.
(Named after its kind; absolute imports keep ``import email`` the standard library's.)
"""

from __future__ import annotations

import email.policy
import logging
import mailbox
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path

from .base import SEPARATOR, ExtractError, Extraction, make_extraction
from .html import parse
from .text import decode, normalize_newlines

log = logging.getLogger(__name__)

_HEADERS = ("From", "To", "Cc", "Date", "Subject")
_PARSER = BytesParser(policy=email.policy.default)


def _clean(text: str) -> str:
    """``text`` on one line, raw 8-bit bytes decoded (UTF-8, else cp1252).

    The parser keeps header bytes it cannot decode as lone surrogates, which no database or
    file can store: they are decoded here.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        raw = text.encode("utf-8", "replace")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", "replace")
    return " ".join(text.split())


def _header(message: Message, name: str) -> str:
    """A header's decoded value ("" when absent); the raw text when decoding failed."""
    try:
        value = str(message.get(name) or "")
    except Exception:  # the header parser can fail on odd input
        value = "\ufffd"
    if "\ufffd" in value:  # raw latin-1 bytes or a bogus charset: the text as written
        name = name.lower()
        value = next((raw for key, raw in message.raw_items() if key.lower() == name), "")
    return _clean(value)


def _sender(message: Message) -> str:
    """The sender's display name, else address (for the heading)."""
    try:
        address = message["From"].addresses[0]
        if "\ufffd" not in (address.display_name or address.addr_spec):
            return _clean(address.display_name or address.addr_spec)
    except Exception:  # absent or unparsable: the header as written
        pass
    return _header(message, "From")


def _date(message: Message) -> str:
    """The date as 2026-03-03 10:00 (for the heading); the header as written if unparsable."""
    try:
        when = message["Date"].datetime
        if when is not None:
            return when.strftime("%Y-%m-%d %H:%M")
    except Exception:  # absent, or not an RFC 5322 date
        pass
    return _header(message, "Date")


def _part_text(part: Message) -> str:
    """A text part's content ("" for binary data).

    Decoded by its declared charset when that works, else by the shared detector: wrong and
    unknown charsets are common.
    """
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset()
    if charset:
        try:
            return normalize_newlines(payload.decode(charset))
        except (LookupError, UnicodeDecodeError):
            log.debug("%s does not decode the part: detecting", charset)
    try:
        return decode(payload)[0]
    except ExtractError:  # binary data in a text part: nothing to read
        return ""


def _body(message: EmailMessage) -> tuple[str, Message | None]:
    """The body text (plain preferred, else HTML as text) and the part it came from."""
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        if part is None:
            continue
        text = _part_text(part)
        if kind == "html":
            text = SEPARATOR.join(t for t, _, _ in parse(text) if t)
        return text.strip(), part
    return "", None


def _attachments(message: EmailMessage, body: Message | None) -> list[str]:
    """The names of the attached files (and forwarded messages, by subject)."""
    names: list[str] = []
    for part in message.walk():
        filename = part.get_filename()
        if part.get_content_type() == "message/rfc822" and not filename:
            inner = part.get_payload(0) if part.get_payload() else None
            subject = _header(inner, "Subject") if isinstance(inner, Message) else ""
            names.append(f'forwarded message "{subject}"' if subject else "forwarded message")
        if part is body or part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment" or (
            filename and part.get_content_disposition() != "inline"
        ):
            names.append(_clean(filename or f"unnamed {part.get_content_type()}"))
    return names


def message_part(message: EmailMessage) -> tuple[str, int | None, str | None]:
    """``(text, page, heading)`` for one message."""
    lines = [f"{name}: {value}" for name in _HEADERS if (value := _header(message, name))]
    body, part = _body(message)
    if body:
        lines += ["", body]
    if names := _attachments(message, part):
        lines += ["", "Attachments: " + ", ".join(names)]
    subject = _header(message, "Subject") or "(no subject)"
    about = ", ".join(item for item in (_sender(message), _date(message)) if item)
    return "\n".join(lines), None, f"{subject} ({about})" if about else subject


def _mbox(path: Path) -> list[tuple[str, int | None, str | None]]:
    with path.open("rb") as fh:
        head = fh.read(5)
    if head and head != b"From ":
        raise ExtractError('not an mbox file (it does not start with a "From " line)')
    box = mailbox.mbox(path, create=False)
    try:
        return [message_part(_PARSER.parsebytes(box.get_bytes(key))) for key in box.iterkeys()]
    finally:
        box.close()


def extract(path: Path) -> Extraction:
    """EML or MBOX file: one section per message."""
    if path.suffix.lower() == ".mbox":
        return make_extraction(_mbox(path))
    with path.open("rb") as fh:
        message = _PARSER.parse(fh)
    if not message.keys() and not message.get_payload():
        return make_extraction([])
    return make_extraction([message_part(message)])
