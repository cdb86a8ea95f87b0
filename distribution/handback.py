"""Handing a lead back from the source's call centre: the takeover is not forever.

Seed 000 §5: "Further processing is only possible after the reassignment of a
call center."  When the OEM's call centre returns a lead (or took it by
mistake), an admin hands it back - to the salesperson who had it, or to the
distribution as if it were new.  The lead is writable again
(``handed_over_at`` cleared, ``handed_back_at`` kept for the list's filter),
the clock starts afresh from now when nobody answered yet (the time with the
call centre is not the salesperson's), and the new owner is told by mail.
Runs in the caller's transaction; no commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.escalation.ladder import initial_due_times
from mailgate.models import OPEN_STATUSES, Lead, LeadStatus, User
from mailgate.protocol import phrase
from mailgate.protocol_log import log

from . import notices
from .actions import ActionError, _customer_values, _lead_values
from .categories import dealer_categories
from .policies import LeadFacts
from .service import assign

HAND_BACK_TARGETS = ("owner", "distribution")


def hand_back(
    session: Session,
    dealer: DealerConfig,
    lead_id: int,
    actor: str,
    now: datetime,
    to: str = "owner",
) -> User:
    """Make a taken-over lead the dealer's again; returns its new owner.

    ``to = "owner"``: the salesperson who had it before the takeover (refused
    when he can no longer take leads: then hand it to the distribution);
    ``to = "distribution"``: whoever the configured distribution picks now.
    """
    if to not in HAND_BACK_TARGETS:
        raise ActionError(f"hand back to one of {', '.join(HAND_BACK_TARGETS)}")
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise ActionError(f"no lead {lead_id}")
    if lead.handed_over_at is None:
        raise ActionError(f"lead {lead_id} is not with the call centre")
    if lead.status not in OPEN_STATUSES:
        raise ActionError(f"lead {lead_id} is {lead.status}")
    target, pooled = _target(session, dealer, lead, to, now)
    values: dict[str, object] = {
        "handed_over_at": None,
        "handed_back_at": now,
        "assignee_id": target.id,
        "last_activity_at": now,
        "escalation_stage": 0,
        "next_due_at": None,
    }
    if lead.status in (LeadStatus.NEW.value, LeadStatus.ASSIGNED.value):
        values["status"] = (LeadStatus.NEW if pooled else LeadStatus.ASSIGNED).value
    if lead.first_response_at is None:
        due = initial_due_times(
            dealer.calendar, dealer.escalation_times(lead.source, lead.kind), now
        )
        values |= {
            "soon_at": due.soon_at,
            "overdue_at": due.overdue_at,
            "stage2_at": due.stage2_at,
            "next_due_at": due.next_due_at,
        }
    lead_values, customer = _lead_values(lead), _customer_values(session, lead)
    session.execute(
        update(Lead)
        .where(Lead.id == lead_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    what = (
        phrase("handed_back_owner", user=actor, owner=target.email)
        if to == "owner"
        else phrase("handed_back_distribution", user=actor)
    )
    entry = log(session, lead_id, actor=actor, action="handed_back", what=what, at=now)
    if not pooled:
        notices.enqueue_assignment(
            session,
            dealer,
            key=f"handed_back:{lead_id}:{entry}",
            lead=lead_values,
            lead_id=lead_id,
            customer=customer,
            user=target,
            template="reassigned",
            extra={"forward": {"by": actor, "note": ""}},
        )
        queued = phrase("notice_queued", user=target.email)
        log(session, lead_id, actor="system", action="notified", what=queued, at=now)
    session.expire_all()
    return target


def _target(
    session: Session, dealer: DealerConfig, lead: Lead, to: str, now: datetime
) -> tuple[User, bool]:
    """The new owner and whether that is the pool account."""
    pool = dealer.document["distribution"]["pool_user"].lower()
    if to == "owner":
        owner = session.get(User, lead.assignee_id) if lead.assignee_id else None
        if owner is None or not owner.active or not owner.can_be_assigned:
            raise ActionError(f"lead {lead.id} has no previous owner who can take it")
        return owner, owner.email.lower() == pool
    facts = LeadFacts(
        source=lead.source,
        kind=lead.kind,
        make=(lead.vehicle or {}).get("make"),
        location=lead.location,
        categories=dealer_categories(dealer.document),
    )
    chosen, decision = assign(session, dealer, facts, now=now)
    if chosen is None:
        raise ActionError(f"lead {lead.id}: the distribution found nobody to take it")
    found = session.scalar(select(User).where(User.id == chosen.id))
    assert found is not None
    return found, bool(decision.pool)
