"""The original mail, shown safely: headers, the MIME parts, its HTML in a sandbox, raw .eml.

A mail's HTML is attacker-controlled.  It is never put into one of our pages;
it is served on its own URL with a CSP that forbids scripts, every remote
load (tracking pixels, fonts, style sheets) and forms, and with the CSP
``sandbox`` directive, so even opened directly it runs in an opaque origin.
The page embeds it with ``<iframe sandbox>`` as a second fence.  The same
shape caps as the pipeline apply before parsing, so a hostile mail cannot
stall a page view.  Used by the lead page and by the admin's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from flask import Response

from mailgate.models import InboundMail
from mailgate.parsers.message import (
    PARSE_POLICY,
    ShapeError,
    check_shape,
    decode_part,
    leaf_parts,
    safe_header,
)

from .headers import decoded

MAX_HEADERS = 200
MAX_HTML_CHARS = 2_000_000
HTML_FRAME_CSP = (
    "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'; sandbox"
)


@dataclass(frozen=True)
class Part:
    number: int
    content_type: str
    filename: str | None
    size: int
    disposition: str | None


@dataclass
class Original:
    """What the page shows of one stored mail (``problem`` when it was not parsed)."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    has_html: bool = False
    problem: str | None = None


def parse(raw: bytes) -> Message | None:
    import email

    try:
        check_shape(raw)
    except ShapeError:
        return None
    return email.message_from_bytes(raw, policy=PARSE_POLICY)


def describe(raw: bytes) -> Original:
    try:
        check_shape(raw)
    except ShapeError as exc:
        return Original(problem=str(exc))
    msg = parse(raw)
    assert msg is not None
    warnings: list[str] = []
    headers: list[tuple[str, str]] = []
    for name in list(dict.fromkeys(msg.keys()))[:MAX_HEADERS]:
        headers.append((name, decoded(safe_header(msg, name, warnings))))
    parts = [_part(n, part) for n, part in enumerate(leaf_parts(msg), start=1)]
    has_html = any(p.content_type == "text/html" for p in parts)
    return Original(headers=headers, parts=parts, has_html=has_html)


def _part(number: int, part: Message) -> Part:
    try:
        filename = part.get_filename()
    except Exception:  # noqa: BLE001 - a broken parameter: show the part without a name
        filename = None
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding
        payload = None
    size = len(payload) if isinstance(payload, bytes) else len(str(part.get_payload()))
    return Part(
        number=number,
        content_type=part.get_content_type(),
        filename=filename,
        size=size,
        disposition=part.get_content_disposition(),
    )


def html_of(raw: bytes) -> str | None:
    """The first HTML part, decoded (None when there is none or the mail is malformed)."""
    msg = parse(raw)
    if msg is None:
        return None
    for part in leaf_parts(msg):
        if part.get_content_type() == "text/html":
            return decode_part(part, [])[:MAX_HTML_CHARS]
    return None


def html_response(raw: bytes) -> Response:
    """The HTML part under the sandbox CSP (an empty page when there is none)."""
    body = html_of(raw) or ""
    response = Response(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = HTML_FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def eml_response(mail: InboundMail, name: str) -> Response:
    """The mail exactly as received, as a download (never displayed inline)."""
    response = Response(mail.raw, mimetype="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.eml"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
