"""Manual distribution actions: reassign, forward, bulk reassign, take from pool, delete.

The web UI calls these; each validates everything first (a clear
:class:`ActionError`, nothing changed), writes the lead's protocol and
notifies the new assignee in the caller's transaction (no commit here).
Taking from the pool is a compare-and-set on the lead's assignee, so two
people clicking at once cannot both get the same lead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.escalation.actions import restart_clock
from mailgate.escalation.handover import handed_over_problem
from mailgate.models import OPEN_STATUSES, Customer, Lead, LeadStatus, User, utcnow
from mailgate.protocol import Phrase, phrase
from mailgate.protocol import note as note_phrases
from mailgate.protocol_log import log
from mailgate.webhooks.emit import emit

from . import notices
from .policies import may_see
from .service import local_day, to_candidate


class ActionError(ValueError):
    """A manual action was refused; the message says why."""


def _user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise ActionError(f"no user {email!r}")
    return user


def _leads(session: Session, ids: Sequence[int]) -> list[Lead]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        raise ActionError("no lead selected")
    leads = {lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(wanted)))}
    missing = [i for i in wanted if i not in leads]
    if missing:
        raise ActionError(f"no lead {missing[0]}")
    return [leads[i] for i in wanted]


def _check_target(user: User, lead: Lead) -> None:
    if not user.active or not user.can_be_assigned:
        raise ActionError(f"{user.email} cannot be assigned leads")
    if not may_see(to_candidate(user), lead.category, lead.location):
        raise ActionError(f"{user.email} may not see {lead.category} leads of lead {lead.id}")
    if lead.status not in OPEN_STATUSES:
        raise ActionError(f"lead {lead.id} is {lead.status}")
    problem = handed_over_problem(lead)
    if problem:
        raise ActionError(problem)


def _lead_values(lead: Lead) -> dict[str, Any]:
    return {
        "source": lead.source,
        "kind": lead.kind,
        "subject": lead.subject,
        "message": lead.message,
        "received_at": lead.received_at,
        "vehicle": lead.vehicle,
        "reply_token": lead.reply_token,
    }


def _customer_values(session: Session, lead: Lead) -> dict[str, Any]:
    customer = session.get(Customer, lead.customer_id) if lead.customer_id else None
    if customer is None:
        return {}
    return {
        c: getattr(customer, c) for c in ("name", "email", "phone", "street", "postcode", "city")
    }


def _absence_note(user: User, now: datetime, dealer: DealerConfig) -> list[Phrase]:
    absence = to_candidate(user).absence_on(local_day(now, dealer))
    return [phrase("target_absent", user=user.email, until_on=absence.until)] if absence else []


def reassign(
    session: Session,
    dealer: DealerConfig,
    lead_ids: Sequence[int],
    to: str,
    *,
    actor: str,
    note: str = "",
    action: str = "reassigned",
    now: datetime | None = None,
) -> list[int]:
    """Give leads to another user (bulk when several ids); all or nothing."""
    now = now or utcnow()
    target = _user(session, to)
    leads = _leads(session, lead_ids)
    for lead in leads:
        _check_target(target, lead)
    actor_user = session.scalar(select(User).where(func.lower(User.email) == actor.lower()))
    by = (actor_user.name or actor_user.email) if actor_user else actor
    absent = _absence_note(target, now, dealer)
    for lead in leads:
        moved = (  # read before the update refreshes lead.assignee
            phrase("moved_from", previous=lead.assignee.email, user=target.email)
            if lead.assignee
            else phrase("moved_from_nobody", user=target.email)
        )
        session.execute(
            update(Lead)
            .where(Lead.id == lead.id)
            .values(
                assignee_id=target.id,
                status=LeadStatus.ASSIGNED.value
                if lead.status == LeadStatus.NEW.value
                else lead.status,
                last_activity_at=now,
            )
            .execution_options(synchronize_session="fetch")
        )
        what = [moved, *absent, *note_phrases(note)]
        entry = log(session, lead.id, actor=actor, action=action, what=what, at=now)
        emit(session, "lead.assigned", lead.id, {"by": actor, "action": action}, key=f"{entry}")
        if lead.first_response_at is None:
            restart_clock(session, dealer, lead.id, actor, now)
        notices.enqueue_assignment(
            session,
            dealer,
            key=f"reassigned:{lead.id}:{entry}",
            lead=_lead_values(lead),
            lead_id=lead.id,
            customer=_customer_values(session, lead),
            user=target,
            template="reassigned",
            extra={"forward": {"by": by, "note": note}},
        )
        queued = phrase("notice_queued", user=target.email)
        log(session, lead.id, actor="system", action="notified", what=queued, at=now)
    return [lead.id for lead in leads]


def forward(
    session: Session,
    dealer: DealerConfig,
    lead_id: int,
    to: str,
    *,
    actor: str,
    note: str,
    now: datetime | None = None,
) -> None:
    """Forward one lead to a colleague with a note (the note travels in the mail)."""
    reassign(session, dealer, [lead_id], to, actor=actor, note=note, action="forwarded", now=now)


def pool_leads(session: Session, dealer: DealerConfig, viewer: str) -> list[Lead]:
    """Leads waiting in the pool that this user may take, oldest first."""
    pool_user = dealer.document["distribution"]["pool_user"]
    if not pool_user:
        return []
    pool = _user(session, pool_user)
    me = to_candidate(_user(session, viewer))
    leads = session.scalars(
        select(Lead)
        .where(Lead.assignee_id == pool.id, Lead.status == LeadStatus.NEW.value)
        .order_by(Lead.received_at, Lead.id)
    )
    return [lead for lead in leads if may_see(me, lead.category, lead.location)]


def take_from_pool(
    session: Session, dealer: DealerConfig, lead_id: int, actor: str, now: datetime | None = None
) -> Lead:
    """Take a pool lead (compare-and-set: still in the pool, still new)."""
    now = now or utcnow()
    dist = dealer.document["distribution"]
    if not dist["pool_user"]:
        raise ActionError("there is no pool (distribution.pool_user is not set)")
    me = _user(session, actor)
    pool = _user(session, dist["pool_user"])
    if me.id == pool.id or not me.active or not me.can_be_assigned:
        raise ActionError(f"{me.email} cannot take leads from the pool")
    visible = pool_leads(session, dealer, me.email)
    if lead_id not in {lead.id for lead in visible}:
        raise ActionError(f"lead {lead_id} is not in the pool (or not visible to {me.email})")
    if dist["pool_oldest_only"] and visible[0].id != lead_id:
        raise ActionError(f"only the oldest pool lead may be taken: lead {visible[0].id}")
    taken = session.execute(
        update(Lead)
        .where(
            Lead.id == lead_id,
            Lead.assignee_id == pool.id,
            Lead.status == LeadStatus.NEW.value,
        )
        .values(assignee_id=me.id, status=LeadStatus.ASSIGNED.value, last_activity_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        raise ActionError(f"lead {lead_id} was just taken by someone else")
    lead = session.get(Lead, lead_id, populate_existing=True)
    assert lead is not None
    taken_by = phrase("taken_by", user=me.email)
    log(session, lead_id, actor=me.email, action="taken", what=taken_by, at=now)
    emit(
        session, "lead.assigned", lead_id, {"by": me.email, "action": "taken"}, key=f"{me.id}:{now}"
    )
    if lead.first_response_at is None:
        restart_clock(session, dealer, lead_id, me.email, now)
        lead = session.get(Lead, lead_id, populate_existing=True)
        assert lead is not None
    notices.enqueue_assignment(
        session,
        dealer,
        key=f"notification:{lead_id}:{me.id}",
        lead=_lead_values(lead),
        lead_id=lead_id,
        customer=_customer_values(session, lead),
        user=me,
    )
    queued = phrase("notification_queued", user=me.email)
    log(session, lead_id, actor="system", action="notified", what=queued, at=now)
    return lead


def delete_leads(
    session: Session,
    dealer: DealerConfig,
    lead_ids: Sequence[int],
    *,
    actor: str,
    now: datetime | None = None,
) -> list[int]:
    """Delete open leads (soft: status ``deleted``, history kept); all or nothing."""
    now = now or utcnow()
    leads = _leads(session, lead_ids)
    for lead in leads:
        if lead.status not in OPEN_STATUSES:
            raise ActionError(f"lead {lead.id} is {lead.status}: only open leads can be deleted")
        problem = handed_over_problem(lead)
        if problem:
            raise ActionError(problem)
    for lead in leads:
        was = lead.status
        session.execute(
            update(Lead)
            .where(Lead.id == lead.id)
            .values(status=LeadStatus.DELETED.value, next_due_at=None, last_activity_at=now)
            .execution_options(synchronize_session="fetch")
        )
        what = phrase("deleted_was", status=was)
        log(session, lead.id, actor=actor, action="deleted", what=what, at=now)
    return [lead.id for lead in leads]
