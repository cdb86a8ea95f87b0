"""Is this inquiry one we already have?  The database side of :mod:`mailgate.fingerprint`.

A fingerprint match counts only within :data:`DUPLICATE_WINDOW` of the
earlier mail.  Why a window: a second server re-delivers within minutes or
hours (a retried queue, a forwarding rule, a second MX), never weeks later; a
customer who sends the very same text a month later is asking again and
should be answered again (as a new lead, or attached to his open one).
Seven days covers long queue retries (RFC 5321 suggests giving up after 4-5
days) with room to spare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.models import Lead, LeadFollowup

DUPLICATE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Twin:
    """The stored mail with the same content: a lead, or a mail attached to one."""

    lead_id: int
    inbound_id: int | None
    attached: bool  # the twin is a follow-up attached to the lead, not the lead's own mail

    def reason(self) -> str:
        """The discard reason, in the wording of the pipeline's other duplicates."""
        what = "a mail attached to lead" if self.attached else "lead"
        mail = f"inbound mail {self.inbound_id}" if self.inbound_id else "a stored mail"
        return (
            f"duplicate of {what} {self.lead_id}: same content as {mail} "
            "(another Message-ID or re-encoded)"
        )


def find_twin(session: Session, fingerprint: str | None, received_at: datetime) -> Twin | None:
    """The earliest lead or follow-up with this fingerprint within the window, or None."""
    if not fingerprint:
        return None
    low, high = received_at - DUPLICATE_WINDOW, received_at + DUPLICATE_WINDOW
    lead = session.execute(
        select(Lead.id, Lead.inbound_id)
        .where(Lead.fingerprint == fingerprint, Lead.received_at.between(low, high))
        .order_by(Lead.id)
        .limit(1)
    ).first()
    if lead is not None:
        return Twin(lead.id, lead.inbound_id, attached=False)
    followup = session.execute(
        select(LeadFollowup.lead_id, LeadFollowup.inbound_id)
        .where(
            LeadFollowup.fingerprint == fingerprint,
            LeadFollowup.received_at.between(low, high),
        )
        .order_by(LeadFollowup.id)
        .limit(1)
    ).first()
    if followup is not None:
        return Twin(followup.lead_id, followup.inbound_id, attached=True)
    return None
