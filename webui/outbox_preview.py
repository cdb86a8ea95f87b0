"""The text of a composed outgoing mail, for the outbox's preview (admins).

The outbox stores each mail as it will go out (MIME, possibly base64 or
quoted-printable, possibly multipart with an HTML alternative).  The preview shows
its plain-text part decoded, capped so a huge mail cannot make a huge page; the
template escapes it.  A mail that cannot be read says so instead of failing.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

PREVIEW_CHARS = 20_000


def text_body(raw: bytes) -> str | None:
    """The plain-text body of ``raw`` (None: it has none, or it cannot be decoded)."""
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
        if not isinstance(msg, EmailMessage):
            return None
        part = msg.get_body(preferencelist=("plain",))
        if part is None or not isinstance(part, EmailMessage):
            return None
        text = part.get_content()
    except Exception:  # noqa: BLE001 - a broken mail gets no preview, never a 500
        return None
    if not isinstance(text, str):
        return None
    text = text.replace("\r\n", "\n").strip()
    if len(text) > PREVIEW_CHARS:
        return text[:PREVIEW_CHARS] + " …"
    return text


__all__ = ["PREVIEW_CHARS", "text_body"]
