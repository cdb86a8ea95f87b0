"""A lead the source took away to its own call centre (seed 000 §4/5): read-only until handed back.

OEM lead systems may take a lead the dealer did not work in time and have their
call centre handle it; their notice names the OEM's lead number.  mailgate then
stops the clock (no more reminders about a lead nobody here may work), writes
the protocol and refuses every change to the lead, so the salesperson does not
call a customer the OEM is already calling.  The takeover is not forever: an
admin hands the lead back (:mod:`mailgate.distribution.handback`, which lives in
distribution because it may pick a new owner).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailgate.models import Lead
from mailgate.protocol import phrase
from mailgate.protocol_log import log

from .ladder import NEVER


class HandedOver(Protocol):
    id: int
    handed_over_at: datetime | None


def handed_over_problem(lead: HandedOver) -> str | None:
    """Why the lead cannot be changed, or None (the service functions raise it as their error)."""
    if lead.handed_over_at is None:
        return None
    return f"lead {lead.id} was taken over by the source's call centre"


def find_by_reference(session: Session, source: str, reference: str) -> int | None:
    """The newest lead of ``source`` with the source's own number ``reference``."""
    return session.scalar(
        select(Lead.id)
        .where(Lead.source == source, Lead.source_ref == reference)
        .order_by(Lead.id.desc())
        .limit(1)
    )


def hand_over(
    session: Session, lead_id: int, now: datetime, *, source: str, reference: str
) -> bool:
    """Mark the lead as taken over (once; returns False when it already was)."""
    moved = session.execute(
        update(Lead)
        .where(Lead.id == lead_id, Lead.handed_over_at.is_(None))
        .values(
            handed_over_at=now,
            escalation_stage=NEVER,
            next_due_at=None,
            last_activity_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved:
        what = phrase("handed_over", source=source, reference=reference)
        log(session, lead_id, actor="system", action="handed_over", what=what, at=now)
    return bool(moved)
