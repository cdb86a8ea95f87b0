"""What an outgoing mail says, for the outbox's preview (admins).

Most queued mails hold no bytes yet: they are composed from their template right
before they are sent (:func:`mailgate.outbound.outbox.materialise`).  The preview
composes them the same way, in memory (nothing is stored or sent), so the admin reads
the subject and text the recipient will get.  A mail that holds its bytes is read as
stored (MIME, base64 or quoted-printable, maybe with an HTML alternative): its
plain-text part, capped so a huge mail cannot make a huge page; the template escapes
it.  A mail that cannot be composed or read says so instead of failing.
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from mailgate.dealer_settings import DealerConfig
from mailgate.models import OutboxMail
from mailgate.outbound.outbox import materialise

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


@dataclass(frozen=True)
class Preview:
    subject: str
    recipients: list[str]
    text: str | None  # None: no text part (or it could not be composed)
    composed: bool  # True: composed now from the template, not yet stored
    failed: bool = False  # the template could not be composed (the sender will fail, too)


def preview(dealer: DealerConfig, mail: OutboxMail) -> Preview:
    """Subject, recipients and text of ``mail`` as it goes (or went) out."""
    recipients = [str(r) for r in mail.recipients or []]
    if mail.raw is not None:
        return Preview(mail.subject, recipients, text_body(mail.raw), composed=False)
    try:
        made = materialise(dealer, mail)
    except Exception:  # noqa: BLE001 - the sender reports it; the page shows "cannot compose"
        return Preview(mail.subject, recipients, None, composed=True, failed=True)
    if made is None:  # pragma: no cover - raw was None above
        return Preview(mail.subject, recipients, None, composed=False)
    return Preview(made.subject, made.recipients, text_body(made.raw), composed=True)


__all__ = ["PREVIEW_CHARS", "Preview", "preview", "text_body"]
