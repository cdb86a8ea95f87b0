"""A content fingerprint of an inquiry: the same inquiry delivered twice is one lead.

The pipeline's dedupe key (Message-ID + raw body) catches a mail that arrives
twice byte for byte (SMTP and IMAP).  It misses the same inquiry passed on by a
second server: a new Message-ID, the body re-encoded (quoted-printable, base64,
8bit), lines re-wrapped, another MIME boundary, a gateway's warning banner or
extra headers on top.  What survives all of that is the *decoded* content, so
this hashes what a person would read:

- the sender's address (the same text from two customers is two inquiries),
- the subject (gateway tags such as ``[EXTERN]`` already removed by the view),
- the decoded text — the plain part, else the HTML part as text; not the
  view's choice between them, which weighs line shapes that re-wrapping
  changes — without a gateway's warning banner, every run of whitespace made
  one space and case folded: re-wrapping and line endings change nothing a
  reader sees, and no server changes case,
- the decoded bytes of every attachment, in order-independent form.

Headers a transport adds or rewrites (Received, Message-ID, Date, …) are not
part of it.  A mail with neither text nor attachments has no fingerprint:
nothing says two empty mails are the same inquiry.

Pure: no database, no clock; the pipeline computes it in the parse stage
(which runs in the parser processes) and :mod:`mailgate.duplicates` looks it up.
"""

from __future__ import annotations

import hashlib
from email.message import Message

from mailgate.parsers.message import (
    MAX_TEXT_CHARS,
    MailView,
    clean_text,
    decode_part,
    html_to_text,
    leaf_parts,
    remove_banners,
    view_of,
)

_BODY_TYPES = ("text/plain", "text/html")
_BANNER_LINES = 40  # a gateway's banner stands at the top
_BANNERS = 3  # banners stacked by gateways one after the other


def normalise(text: str | None) -> str:
    """Whitespace runs to one space, case folded: what re-wrapping and CRLF cannot change."""
    return " ".join((text or "").split()).casefold()


def fingerprint(view: MailView) -> str | None:
    """sha256 hex of sender, subject, decoded text and attachments; None for an empty mail."""
    text = normalise(_body_text(view.message) or view.text)  # view.text: a salvaged multipart
    attachments = sorted(_attachment_digests(view.message))
    if not text and not attachments:
        return None
    sender = view.from_addresses[0][1].strip().lower() if view.from_addresses else ""
    digest = hashlib.sha256()
    for label, value in (
        ("from", sender),
        ("subject", normalise(view.subject)),
        ("text", text),
        ("attachments", ",".join(attachments)),
    ):
        digest.update(f"{label}:{len(value)}:{value}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _body_text(message: Message) -> str:
    """The first inline plain part, else the first inline HTML part as text, banner removed."""
    plain = html = None
    for part in leaf_parts(message):
        ctype = part.get_content_type()
        if ctype not in _BODY_TYPES or part.get_content_disposition() == "attachment":
            continue
        if ctype == "text/plain" and plain is None:
            plain = decode_part(part, [])
        elif ctype == "text/html" and html is None:
            html = decode_part(part, [])
    if plain and plain.strip():
        text, strip = clean_text(plain[:MAX_TEXT_CHARS]), remove_banners
    else:
        text, strip = clean_text(html_to_text(html or "")[:MAX_TEXT_CHARS]), _without_banner_line
    for _ in range(_BANNERS):  # each gateway on the way may add its own
        shorter = strip(text)
        if shorter == text:
            break
        text = shorter
    return text


def _without_banner_line(text: str) -> str:
    """HTML as text: the banner is its own block, one line; the next line is not banner.

    (:func:`remove_banners` removes a paragraph up to a blank line, right for
    plain text; HTML blocks become single lines, so it would take the heading
    after the banner with it — on the copy only.)
    """
    lines = text.split("\n")
    for index, line in enumerate(lines[:_BANNER_LINES]):
        if line.strip() and not remove_banners(line).strip():
            return "\n".join(lines[:index] + lines[index + 1 :])
    return text


def _attachment_digests(message: Message) -> list[str]:
    """sha256 of each attachment's decoded bytes (the body's text parts are in ``text``)."""
    found = []
    for part in leaf_parts(message):
        ctype = part.get_content_type()
        if ctype.startswith("multipart/"):
            continue  # a broken multipart left as text: the view salvaged its text
        if ctype in _BODY_TYPES and part.get_content_disposition() != "attachment":
            continue
        if part.get_content_maintype() == "message" and part.is_multipart():
            inner = part.get_payload(0)  # an attached mail: its decoded text, like ours
            assert isinstance(inner, Message)
            payload = normalise(view_of(inner).text).encode("utf-8", "surrogatepass")
            found.append(hashlib.sha256(payload).hexdigest())
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - a broken transfer encoding: its text then
            payload = None
        if not isinstance(payload, bytes):
            payload = str(part.get_payload()).encode("utf-8", "surrogateescape")
        found.append(hashlib.sha256(payload).hexdigest())
    return found
