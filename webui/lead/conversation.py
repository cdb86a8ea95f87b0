"""The conversation about one lead, in time order: every message between dealer and customer.

Shown in full (issue 17 item 9): the inquiry, the customer's follow-ups and
replies, the salesperson's answers — relayed from his mail client, sent in
copy, or written on the lead page — each with its text (quoted parts folded
away), its attachments (downloadable, :mod:`.attachments`), who wrote it and
whether it was delivered.  The staff mails about the lead (notification,
reminders, escalations, relays to the assignee) are listed apart, as
metadata: they are not part of what the customer saw.

Messages come from the stored mails (``InboundMail``: the inquiry, mails
attached as follow-ups and every reply the pipeline recorded on the lead) and
from the outbox.  A salesperson's reply that was relayed is shown once: as
the mail the customer received (its text after the link filter), not also
as the salesperson's own mail.  At most :data:`MAX_PARSED` mails are parsed
per page view (the newest); older ones show their metadata only.
"""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailgate.escalation.quotes import quote_start
from mailgate.models import InboundMail, InboundRaw, Lead, LeadFollowup, OutboxMail, User
from mailgate.outbound.hygiene import CUSTOMER_PURPOSES
from mailgate.parsers.message import (
    PARSE_POLICY,
    ShapeError,
    check_shape,
    leaf_parts,
    view_of,
)

from .filenames import safe_filename
from .headers import decoded

MAX_ENTRIES = 200
MAX_PARSED = 60
MAX_TEXT = 50_000


@dataclass(frozen=True)
class Part:
    """One attachment of a message, as the download route numbers it."""

    number: int
    filename: str
    content_type: str
    size: int


@dataclass
class Entry:
    at: datetime
    direction: str  # in | out
    kind: str  # inquiry | followup | customer | staff | other | an outbox purpose
    party: str  # sender (in) or recipients (out)
    subject: str
    text: str | None = None  # the writer's own words
    quoted: str | None = None  # the quoted rest, folded away on the page
    author: str | None = None  # the salesperson, for answers
    envelope: str | None = None  # the SMTP sender, when not of the From header's domain
    bounced_at: datetime | None = None  # a bounce came back for it: undelivered after all
    bounce_reason: str | None = None
    status: str | None = None  # outbox status
    sent_at: datetime | None = None
    error: str | None = None
    source: str = ""  # "in" (an InboundMail) or "out" (an OutboxMail): the download route
    mail_id: int | None = None
    parts: list[Part] = field(default_factory=list)


def lead_inbound_ids(session: Session, lead: Lead) -> list[int]:
    """The stored mails that belong to ``lead``: its inquiry, follow-ups and recorded replies.

    The download route asks the same question, so a mail of another lead can
    never be reached through this lead's URL.
    """
    followups = select(LeadFollowup.inbound_id).where(LeadFollowup.lead_id == lead.id)
    return list(
        session.scalars(
            select(InboundMail.id)
            .where(
                or_(
                    InboundMail.id == lead.inbound_id,
                    InboundMail.id.in_(followups),
                    InboundMail.lead_id == lead.id,
                )
            )
            .order_by(InboundMail.received_at.desc())
            .limit(MAX_ENTRIES)
        )
    )


def conversation(session: Session, lead: Lead) -> tuple[list[Entry], list[Entry]]:
    """(messages with the customer, staff mails about the lead), each oldest first."""
    ids = lead_inbound_ids(session, lead)
    parse_ids = set(ids[:MAX_PARSED])
    staff = {
        email.lower(): name
        for email, name in session.execute(select(func.lower(User.email), User.name))
    }
    customer = lead.customer
    customer_email = (customer.email or "").lower() if customer is not None else ""
    followups = {
        row.inbound_id: row
        for row in session.scalars(select(LeadFollowup).where(LeadFollowup.lead_id == lead.id))
    }
    outbox = list(
        session.execute(
            select(
                OutboxMail.id,
                OutboxMail.idempotency_key,
                OutboxMail.created_at,
                OutboxMail.purpose,
                OutboxMail.recipients,
                OutboxMail.subject,
                OutboxMail.status,
                OutboxMail.sent_at,
                OutboxMail.last_error,
                OutboxMail.mail_from,
                OutboxMail.bounced_at,
                OutboxMail.bounce_reason,
            )
            .where(OutboxMail.lead_id == lead.id)
            .order_by(OutboxMail.created_at.desc())
            .limit(MAX_ENTRIES)
        )
    )
    relayed = {
        int(key.rpartition(":")[2])
        for key in (o.idempotency_key for o in outbox)
        if key.startswith("relay_to_customer:") and key.rpartition(":")[2].isdigit()
    }
    entries: list[Entry] = []
    for row in session.scalars(select(InboundMail).where(InboundMail.id.in_(ids))):
        if row.id in relayed:
            continue  # shown as the mail the customer got (below)
        entries.append(
            _inbound(session, row, lead, followups, staff, customer_email, row.id in parse_ids)
        )
    internal: list[Entry] = []
    parsed_out = 0
    for o in outbox:
        entry = Entry(
            o.created_at,
            "out",
            o.purpose,
            ", ".join(str(r) for r in o.recipients or ()),
            decoded(o.subject),
            status=o.status,
            sent_at=o.sent_at,
            error=o.last_error,
            source="out",
            mail_id=o.id,
            bounced_at=o.bounced_at,
            bounce_reason=o.bounce_reason,
        )
        if o.purpose not in CUSTOMER_PURPOSES:
            internal.append(entry)
            continue
        if parsed_out < MAX_PARSED:
            parsed_out += 1
            raw = session.scalar(select(OutboxMail.raw).where(OutboxMail.id == o.id))
            _fill_outbound(entry, raw)
        entries.append(entry)
    return sorted(entries, key=lambda e: e.at), sorted(internal, key=lambda e: e.at)


def _inbound(
    session: Session,
    row: InboundMail,
    lead: Lead,
    followups: dict[int | None, LeadFollowup],
    staff: dict[str, str],
    customer_email: str,
    full: bool,
) -> Entry:
    entry = Entry(
        row.received_at, "in", "other", row.envelope_from or "", "", source="in", mail_id=row.id
    )
    msg = None
    if full:
        msg = parse(session.scalar(select(InboundRaw.raw).where(InboundRaw.inbound_id == row.id)))
    sender = ""
    if msg is not None:
        view = view_of(msg)
        if len(view.from_addresses) == 1:
            name, address = view.from_addresses[0]
            sender = address.lower()
            entry.party = decoded(f"{name} <{address}>" if name else address)
        envelope = (row.envelope_from or "").lower()
        if envelope and _domain(envelope) != _domain(sender):
            entry.envelope = row.envelope_from  # forwarded, or a From that is not the sender's
        entry.subject = decoded(view.subject)
        _split(entry, view.text)
        entry.parts = attachment_parts(msg)
    followup = followups.get(row.id)
    if row.id == lead.inbound_id:
        entry.kind = "inquiry"
        entry.subject = decoded(lead.subject) or entry.subject
        entry.text, entry.quoted = (lead.message or entry.text), None
    elif followup is not None:
        entry.kind = "followup"
        entry.subject = decoded(followup.subject) or entry.subject
        entry.text, entry.quoted = (followup.message or entry.text), None
    elif sender and sender in staff:
        entry.kind = "staff"
        entry.author = staff[sender] or sender
    elif sender and sender == customer_email:
        entry.kind = "customer"
    return entry


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


def _fill_outbound(entry: Entry, raw: bytes | None) -> None:
    """Text and attachments of a mail we sent (None raw: a deferred row not yet composed)."""
    msg = parse(raw)
    if msg is None:
        return
    view = view_of(msg)
    if len(view.from_addresses) == 1:
        name = view.from_addresses[0][0]
        entry.author = name.rpartition(" (")[0] or name
    _split(entry, view.text)
    entry.parts = attachment_parts(msg)


def parse(raw: bytes | None) -> Message | None:
    """A stored mail, parsed within the pipeline's shape caps (None: not parseable)."""
    if raw is None:
        return None
    try:
        check_shape(raw)
    except ShapeError:
        return None
    return email.message_from_bytes(raw, policy=PARSE_POLICY)


def _split(entry: Entry, text: str) -> None:
    """The writer's words, and the quoted rest (an answer's quote of the earlier mail)."""
    lines = text[:MAX_TEXT].split("\n")
    start = quote_start(lines)
    own = "\n".join(lines if start is None else lines[:start]).strip()
    if start is None or not own:  # nothing quoted, or an answer written below the quote
        entry.text, entry.quoted = text[:MAX_TEXT].strip() or None, None
        return
    entry.text, entry.quoted = own, "\n".join(lines[start:]).strip() or None


def attachment_parts(msg: Message) -> list[Part]:
    """The parts a person would call attachments: named, or marked as attachment.

    Numbered like :func:`.original.describe` (leaf parts from 1), which the
    download route uses to find the part again.
    """
    found = []
    for number, part in enumerate(leaf_parts(msg), start=1):
        try:
            filename = part.get_filename()
        except Exception:  # noqa: BLE001 - a broken parameter: the part has no usable name
            filename = None
        disposition = part.get_content_disposition()
        if not filename and disposition != "attachment":
            continue
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        found.append(Part(number, safe_filename(filename, number), part.get_content_type(), size))
    return found


def part_bytes(raw: bytes, number: int) -> tuple[Part, bytes] | None:
    """Leaf part ``number`` of a stored mail and its decoded bytes (None if no such part).

    Any leaf part, not only the listed attachments: a body part downloaded as
    a file is harmless, and the numbers stay those of the original-mail view.
    """
    msg = parse(raw)
    if msg is None or number < 1:
        return None
    for index, part in enumerate(leaf_parts(msg), start=1):
        if index != number:
            continue
        try:
            filename = part.get_filename()
        except Exception:  # noqa: BLE001 - a broken parameter: the part has no usable name
            filename = None
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        name = filename or f"Teil-{number}"
        return Part(number, name, part.get_content_type(), len(data)), data
    return None
