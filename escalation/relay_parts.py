"""Building a relayed mail that keeps everything the writer sent (issue 17, item 1).

A salesperson's PDF offer and a customer's photos are the conversation as
much as the words, so the relay carries every MIME part of the original:
attachments byte for byte, inline images with their ``Content-ID`` (inside
``multipart/related`` with the HTML that names them), and the HTML
alternative next to the plain text.  What must *not* travel to a customer is
ours: the HTML is cut at the quote of our notification like the text
(:func:`mailgate.escalation.quotes.own_html`) and then passes the link filter
(:func:`mailgate.outbound.hygiene.scrub_html`); an attachment that is one of
our own staff mails' attachments (or a forwarded mailgate mail) is left out.

:func:`compose_relay` turns "who, to whom, what" into a sendable mail and
:func:`customer_thread` finds the customer's Message-IDs to thread on; both
are pure enough for any other sender of answers (the lead page's form) to
use, so an answer from the web and one from a mail client can leave in the
same shape.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import InboundMail, InboundRaw, Lead, OutboxMail
from mailgate.outbound.compose import (
    LOOP_HEADER,
    Attachment,
    build_message,
    new_message_id,
    render_mail,
)
from mailgate.outbound.hygiene import CUSTOMER_PURPOSES, scrub_html, scrub_text
from mailgate.outbound.outbox import ComposedMail
from mailgate.parsers.message import MailView, decode_part, leaf_parts

from .quotes import own_html

MB = 1024 * 1024
DEFAULT_MAX_MB = 20
THREAD_DEPTH = 20  # References: the newest ids are enough for every client to thread
_MSG_ID = re.compile(r"^<[^<>\s\"\\]{1,250}>$")


@dataclass(frozen=True)
class RelayParts:
    """The parts of a mail worth relaying besides its plain text."""

    html: str | None
    attachments: tuple[Attachment, ...]
    withheld: int = 0  # attachments left out as ours (a forwarded staff mail, our PDF)

    def size(self, text: str) -> int:
        """What the relayed mail carries, decoded (base64 adds a third on the wire)."""
        total = len(text.encode("utf-8")) + len((self.html or "").encode("utf-8"))
        return total + sum(len(a.content) for a in self.attachments)


def max_relay_bytes(dealer: DealerConfig) -> int:
    """The dealer's ``max_relay_size_mb`` in bytes."""
    return int(dealer.document["dealer"].get("max_relay_size_mb", DEFAULT_MAX_MB)) * MB


def _is_body(part: Message, ctype: str) -> bool:
    if part.get_content_disposition() == "attachment":
        return False
    try:
        return part.get_filename() is None
    except Exception:  # noqa: BLE001 - an unreadable filename parameter: treat as a file
        return False


def _filename(part: Message, index: int, mimetype: str) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001 - a hostile or broken parameter
        name = None
    if name:
        return str(name)
    extension = mimetypes.guess_extension(mimetype) or ".bin"
    return f"anhang-{index}{extension}"


def _content(part: Message) -> bytes:
    """The part's decoded bytes; an attached mail as its own bytes."""
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            try:
                return bytes(inner[0].as_bytes())
            except Exception:  # noqa: BLE001 - a mail too broken to re-serialise: as text
                return str(inner[0]).encode("utf-8", "surrogateescape")
        return str(part).encode("utf-8", "surrogateescape")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def is_ours(content: bytes) -> bool:
    """A mail of ours (forwarded as attachment): it carries our loop header."""
    head = content[:65536].lower()
    return head.startswith(LOOP_HEADER.lower().encode() + b":") or (
        b"\n" + LOOP_HEADER.lower().encode() + b":" in head
    )


def relay_parts(
    view: MailView, *, cut_quote: bool, withhold: frozenset[str] = frozenset()
) -> RelayParts:
    """The HTML alternative and every other part of ``view``, ready to relay.

    ``cut_quote``: the HTML is cut where the quote of our notification begins
    (staff -> customer).  ``withhold``: SHA-256 hex digests of attachments that
    are ours and must not travel (see :func:`own_attachment_hashes`).
    """
    html: str | None = None
    plain_seen = False
    files: list[Attachment] = []
    withheld = 0
    for index, part in enumerate(leaf_parts(view.message), start=1):
        ctype = part.get_content_type()
        if ctype.startswith("multipart/"):
            continue  # a broken container with a text payload: nothing to attach
        if ctype == "text/plain" and not plain_seen and _is_body(part, ctype):
            plain_seen = True  # the text travels as the relay's own text (quotes cut)
            continue
        if ctype == "text/html" and html is None and _is_body(part, ctype):
            markup = decode_part(part, [])
            html = own_html(markup) if cut_quote else markup
            continue
        content = _content(part)
        if hashlib.sha256(content).hexdigest() in withhold or (
            ctype.startswith("message/") and is_ours(content)
        ):
            withheld += 1
            continue
        content_id = part.get("Content-ID")
        files.append(
            Attachment(
                _filename(part, index, ctype),
                content,
                ctype,
                content_id=str(content_id) if content_id else None,
            )
        )
    return RelayParts(html, tuple(files), withheld)


# mails whose attachments are not ours: the customer's own files relayed to the assignee
_NOT_OURS = frozenset(CUSTOMER_PURPOSES | {"relay_to_assignee", "relay_notice"})


def own_attachment_hashes(session: Session, lead_id: int) -> frozenset[str]:
    """SHA-256 of every attachment of the staff mails we sent about the lead.

    A salesperson who answers with "forward" or keeps the attachments of a
    notification (the trade-in PDF) would otherwise hand our internal
    documents to the customer.
    """
    found: set[str] = set()
    raws = session.scalars(
        select(OutboxMail.raw)
        .where(OutboxMail.lead_id == lead_id, OutboxMail.purpose.not_in(_NOT_OURS))
        .order_by(OutboxMail.id.desc())
        .limit(50)
    )
    from email import message_from_bytes

    for raw in raws:
        if not raw:
            continue
        for part in message_from_bytes(raw).walk():
            if part.get_content_disposition() in ("attachment", "inline") and not (
                part.is_multipart()
            ):
                data = part.get_payload(decode=True)
                if isinstance(data, bytes) and data:
                    found.add(hashlib.sha256(data).hexdigest())
    return frozenset(found)


def clean_message_id(value: str | None) -> str | None:
    """``<id@host>`` as it may go into a header, or None (hostile ids are dropped)."""
    text = (value or "").strip()
    return text if _MSG_ID.match(text) else None


def customer_thread(
    session: Session, lead: Lead, customer_email: str
) -> tuple[str | None, list[str]]:
    """``(In-Reply-To, References)`` for a mail to the customer, from stored Message-IDs.

    The customer's client threads by the ids it knows: those of his own
    messages (his inquiry if he sent it himself, his replies) and of our
    earlier relayed answers.  In-Reply-To names his newest message.
    """
    wanted = customer_email.lower()
    rows = session.execute(
        select(InboundMail.id, InboundMail.message_id, InboundMail.received_at)
        .where((InboundMail.lead_id == lead.id) | (InboundMail.id == lead.inbound_id))
        .order_by(InboundMail.id.desc())
        .limit(THREAD_DEPTH)
    ).all()
    dated: list[tuple[Any, str, bool]] = []
    for row in rows:
        message_id = clean_message_id(row.message_id)
        if message_id and _from_of(session, row.id) == wanted:
            dated.append((row.received_at, message_id, True))
    ours = session.execute(
        select(OutboxMail.message_id, OutboxMail.created_at)
        .where(OutboxMail.lead_id == lead.id, OutboxMail.purpose == "relay_to_customer")
        .order_by(OutboxMail.id.desc())
        .limit(THREAD_DEPTH)
    ).all()
    dated += [(r.created_at, m, False) for r in ours if (m := clean_message_id(r.message_id))]
    dated.sort(key=lambda item: item[0])
    references = list(dict.fromkeys(m for _, m, _ in dated))[-THREAD_DEPTH:]
    his = [m for _, m, mine in dated if mine]
    return (his[-1] if his else None), references


def _from_of(session: Session, inbound_id: int) -> str:
    raw = session.scalar(select(InboundRaw.raw).where(InboundRaw.inbound_id == inbound_id))
    if not raw:
        return ""
    try:
        header = BytesHeaderParser().parsebytes(bytes(raw)).get("From", "")
        found = getaddresses([str(header)])
    except Exception:  # noqa: BLE001 - an unreadable header names nobody
        return ""
    return found[0][1].lower() if len(found) == 1 else ""


def compose_relay(
    dealer: DealerConfig,
    *,
    key: str,
    purpose: str,
    language: str,
    subject: str,
    text: str,
    html: str | None,
    to: Sequence[tuple[str, str]],
    reply_to: Sequence[tuple[str, str]],
    from_name: str,
    attachments: Iterable[Attachment] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    override_dir: Path | None = None,
) -> ComposedMail:
    """A relayed mail (``relay`` template) with the writer's HTML and files; no database.

    ``purpose`` ``relay_to_customer`` (any of ``CUSTOMER_PURPOSES``) runs the
    last link filter over subject, text and HTML, whatever the caller passed.
    ``html`` None: the template's HTML rendering of ``text``.  Raises
    ValueError for an unusable address (as :func:`build_message`).
    """
    context: Mapping[str, Any] = {"subject": subject, "body": text, "dealer_name": dealer.name}
    rendered = render_mail("relay", language, context, override_dir or dealer.template_dir)
    out_subject, out_text = rendered.subject, rendered.text
    out_html = html if html is not None else rendered.html
    if purpose in CUSTOMER_PURPOSES:
        out_subject = scrub_text(out_subject, dealer.base_url)
        out_text = scrub_text(out_text, dealer.base_url)
        out_html = scrub_html(out_html, dealer.base_url)
    sender = dealer.sender_address
    message_id = new_message_id(sender.rpartition("@")[2])
    raw = build_message(
        from_name=from_name,
        from_address=sender,
        to=to,
        subject=out_subject,
        text=out_text,
        html=out_html,
        message_id=message_id,
        reply_to=reply_to,
        in_reply_to=in_reply_to,
        references=references,
        attachments=list(attachments),
        automatic=False,  # a person's words (RFC 3834 section 5)
    )
    return ComposedMail(sender, [addr for _, addr in to], out_subject, message_id, raw)


def quoted_html(text: str | None, limit: int = 4000) -> str:
    """The inquiry quoted under an HTML answer, as the text part quotes it."""
    body = html_lib.escape((text or "").strip()[:limit])
    if not body:
        return ""
    return (
        '<blockquote style="margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex">'
        f'<div style="white-space:pre-wrap">{body}</div></blockquote>'
    )
