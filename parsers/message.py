"""Shared MIME handling for every parser: load a mail safely, get its text.

Python's ``email`` package raises on several real-world inputs (an encoded CR/LF
in a display name, unknown charset labels, boundaries that never match), so
everything here catches, degrades and records a warning instead.  Shape caps
are checked on the raw bytes *before* the MIME parser runs, so no input can make
parsing blow up in time or memory.
"""

from __future__ import annotations

import email
import html
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import Message
from email.utils import getaddresses
from functools import lru_cache

MAX_HEADER_SECTION = 256 * 1024
MAX_SINGLE_HEADER = 64 * 1024
MAX_PARTS = 200
MAX_MULTIPARTS = 20
MAX_TEXT_CHARS = 200_000

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u0085\u2028\u2029]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BOUNDARY_LINE = re.compile(rb"^--", re.MULTILINE)
_MULTIPART = re.compile(rb"multipart/", re.IGNORECASE)


class ShapeError(ValueError):
    """The raw mail exceeds a structural cap; it is quarantined, not parsed."""


def check_shape(raw: bytes) -> None:
    """Raise :class:`ShapeError` if the mail is too big or too deep to parse safely."""
    match = _HEADER_END.search(raw, 0, MAX_HEADER_SECTION + 4)
    if match is None and len(raw) > MAX_HEADER_SECTION:
        raise ShapeError(f"header section larger than {MAX_HEADER_SECTION} bytes")
    head = raw[: match.start()] if match else raw
    longest = max((len(line) for line in re.split(rb"\r?\n(?![ \t])", head)), default=0)
    if longest > MAX_SINGLE_HEADER:
        raise ShapeError(f"a header field is longer than {MAX_SINGLE_HEADER} bytes")
    if len(_BOUNDARY_LINE.findall(raw)) > 2 * MAX_PARTS + 2:
        raise ShapeError(f"more than {MAX_PARTS} MIME parts")
    if len(_MULTIPART.findall(raw)) > MAX_MULTIPARTS:
        raise ShapeError(f"more than {MAX_MULTIPARTS} nested multipart containers")


_TEXT_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str) -> str:
    """Multi-line text without NULs and other control characters (tabs and newlines stay).

    PostgreSQL refuses NUL in text columns, and no customer message needs one.
    """
    return _TEXT_CTRL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def clean_line(value: str | None, limit: int = 998) -> str | None:
    """A single-line value: control characters and line breaks folded to spaces."""
    if value is None:
        return None
    text = " ".join(_CTRL.sub(" ", str(value)).split())
    return text[:limit] or None


@dataclass
class MailView:
    """The parts of a mail every parser needs, decoded once."""

    message: Message
    subject: str | None
    from_addresses: list[tuple[str, str]]
    reply_to: list[tuple[str, str]]
    text: str
    html: str | None
    warnings: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return safe_header(self.message, name, self.warnings)


_HEADER_REGISTRY = HeaderRegistry()
_CACHEABLE_HEADER = 1000


@lru_cache(maxsize=4096)
def _cached_header(name: str, value: str) -> BaseHeader:
    return _HEADER_REGISTRY(name, value)


def _header_factory(name: str, value: str) -> BaseHeader:
    """The stdlib's header objects, built once per distinct short (name, value).

    ``policy.default`` re-parses a header on every access, and the MIME walk
    asks for ``Content-Type`` many times per part: without the cache that
    parsing is most of a mail's parse time.  Header objects are immutable
    ``str`` subclasses, so sharing one is safe; long values are not cached so
    the cache stays small.
    """
    if len(value) > _CACHEABLE_HEADER:
        return _HEADER_REGISTRY(name, value)
    return _cached_header(name, value)


PARSE_POLICY = policy.default.clone(header_factory=_header_factory)


def load(raw: bytes) -> MailView:
    """Parse raw bytes into a :class:`MailView`; never raises on content."""
    warnings: list[str] = []
    msg = email.message_from_bytes(raw, policy=PARSE_POLICY)
    if msg.defects:
        warnings.append(
            "mime defects: " + ", ".join(sorted({type(d).__name__ for d in msg.defects}))
        )
    subject = clean_line(safe_header(msg, "Subject", warnings))
    plain, html_body = _bodies(msg, warnings)
    text = clean_text(plain if plain and plain.strip() else html_to_text(html_body or ""))
    return MailView(
        message=msg,
        subject=subject,
        from_addresses=safe_addresses(msg, "From", warnings),
        reply_to=safe_addresses(msg, "Reply-To", warnings),
        text=text[:MAX_TEXT_CHARS],
        html=html_body,
        warnings=warnings,
    )


def safe_header(msg: Message, name: str, warnings: list[str]) -> str | None:
    """A header's decoded value; on a policy error, the raw value instead."""
    try:
        value = msg.get(name)
        return None if value is None else str(value)
    except (ValueError, TypeError, LookupError, IndexError, AttributeError) as exc:
        warnings.append(f"unreadable {name} header: {type(exc).__name__}")
        for key, raw_value in msg.raw_items():
            if key.lower() == name.lower():
                return clean_line(str(raw_value))
        return None


def safe_addresses(msg: Message, name: str, warnings: list[str]) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs, single-line, lower-cased domain part."""
    value = safe_header(msg, name, warnings)
    if not value:
        return []
    pairs = []
    for display, address in getaddresses([value]):
        address = (clean_line(address) or "").strip("<>")
        if "@" not in address:
            continue
        local, _, domain = address.rpartition("@")
        pairs.append((clean_line(display) or "", f"{local}@{domain.lower()}"))
    return pairs


def _bodies(msg: Message, warnings: list[str]) -> tuple[str | None, str | None]:
    plain: str | None = None
    html_body: str | None = None
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        if part.get_content_disposition() == "attachment":
            continue
        text = decode_part(part, warnings)
        if ctype == "text/plain" and plain is None:
            plain = text
        elif ctype == "text/html" and html_body is None:
            html_body = text
    return plain, html_body


def decode_part(part: Message, warnings: list[str]) -> str:
    """Decode a text part, falling back through sensible charsets on bad labels."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken transfer encodings: take the raw text
        warnings.append("undecodable transfer encoding")
        payload = str(part.get_payload()).encode("utf-8", "replace")
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8", "windows-1252"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            if candidate == charset:
                warnings.append(f"charset {charset!r} did not decode; fell back")
    return payload.decode("latin-1")


_SCRIPT_STYLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(r"<\s*(br|/p|/div|/tr|/h\d|/li|p|div|tr|li)\b[^>]*>", re.IGNORECASE)
_CELL = re.compile(r"</t[dh]\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def html_to_text(markup: str) -> str:
    """Plain text from HTML: scripts dropped, rows become lines, cells ``label: value``."""
    text = _SCRIPT_STYLE.sub(" ", markup)
    text = _CELL.sub(" \t", text)
    text = _BREAKS.sub("\n", text)
    text = html.unescape(_TAG.sub("", text))
    lines = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        if len(cells) == 2 and not cells[0].endswith(":"):
            cells[0] += ":"
        lines.append(" ".join(cells))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
