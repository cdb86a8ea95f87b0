"""The conversation about one lead, in time order: what came in and what went out.

Inbound: the original inquiry and every follow-up attached to the lead
(``LeadFollowup``: the customer wrote again, a reply relayed through us).
Outbound: every mail in the outbox about this lead (notification, reminders,
escalations, relayed replies) with its delivery state.  Columns only: a lead
with many mails must not load their raw bytes for a page view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.models import InboundMail, LeadFollowup, OutboxMail

MAX_ENTRIES = 200


@dataclass(frozen=True)
class Entry:
    at: datetime
    direction: str  # in | out
    kind: str  # inquiry | followup | an outbox purpose
    party: str  # sender (in) or recipients (out)
    subject: str
    text: str | None = None  # follow-up message text
    status: str | None = None  # outbox status
    sent_at: datetime | None = None
    error: str | None = None


def conversation(session: Session, lead_id: int, inbound_id: int | None) -> list[Entry]:
    entries: list[Entry] = []
    if inbound_id is not None:
        row = session.execute(
            select(InboundMail.received_at, InboundMail.envelope_from).where(
                InboundMail.id == inbound_id
            )
        ).first()
        if row is not None:
            entries.append(Entry(row.received_at, "in", "inquiry", row.envelope_from or "", ""))
    followups = session.execute(
        select(
            LeadFollowup.received_at,
            LeadFollowup.subject,
            LeadFollowup.message,
            InboundMail.envelope_from,
        )
        .outerjoin(InboundMail, InboundMail.id == LeadFollowup.inbound_id)
        .where(LeadFollowup.lead_id == lead_id)
        .order_by(LeadFollowup.received_at)
        .limit(MAX_ENTRIES)
    )
    for f in followups:
        entries.append(
            Entry(
                f.received_at, "in", "followup", f.envelope_from or "", f.subject or "", f.message
            )
        )
    outgoing = session.execute(
        select(
            OutboxMail.created_at,
            OutboxMail.purpose,
            OutboxMail.recipients,
            OutboxMail.subject,
            OutboxMail.status,
            OutboxMail.sent_at,
            OutboxMail.last_error,
        )
        .where(OutboxMail.lead_id == lead_id)
        .order_by(OutboxMail.created_at)
        .limit(MAX_ENTRIES)
    )
    for o in outgoing:
        entries.append(
            Entry(
                o.created_at,
                "out",
                o.purpose,
                ", ".join(str(r) for r in o.recipients or ()),
                o.subject or "",
                status=o.status,
                sent_at=o.sent_at,
                error=o.last_error,
            )
        )
    return sorted(entries, key=lambda e: e.at)
