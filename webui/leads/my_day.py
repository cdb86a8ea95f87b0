""" "My day": the page a salesperson opens in the morning (their own leads, in working order).

The selection in SQL is generous (open, own, something due before tonight);
:mod:`.agenda` decides the section and order, so page and tests share one rule.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import login_required
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from mailgate.distribution.actions import ActionError, pool_leads
from mailgate.escalation.ladder import NEVER, RESUBMISSION
from mailgate.models import OPEN_STATUSES, Lead, utcnow

from ..access import Account, me
from ..context import db, dealer
from .agenda import SECTIONS, Agenda, plan_day
from .due import state_of
from .fragments import fragment_login
from .rows import RowFormatter

bp = Blueprint("my_day", __name__)
MAX_LEADS = 500  # more than a day's work; the list's filters show the rest


def day_end(now: datetime) -> datetime:
    """The next local midnight in the dealer's time zone, as an aware instant."""
    zone = dealer().timezone
    today = now.astimezone(zone).date()
    return datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)


def day_context(now: datetime, user: Account) -> dict[str, Any]:
    """The agenda of ``user`` at ``now`` and what the page says about it."""
    end = day_end(now)
    candidates = db().scalars(
        select(Lead)
        .options(selectinload(Lead.customer))
        .where(
            Lead.assignee_id == user.id,
            Lead.status.in_(OPEN_STATUSES),
            Lead.escalation_stage < NEVER,
            or_(
                and_(Lead.escalation_stage == RESUBMISSION, Lead.soon_at < end),
                and_(Lead.first_response_at.is_(None), Lead.overdue_at < end),
                Lead.follow_up_at < end,  # a call that did not reach the customer: try again
            ),
        )
        .order_by(Lead.overdue_at)
        .limit(MAX_LEADS)
    )
    agenda = plan_day(candidates, now, end)
    return {
        "agenda": agenda,
        "state_of": lambda lead: state_of(lead, now),
        "vehicle": RowFormatter.vehicle,
        "capped": len(agenda) >= MAX_LEADS,
        "known": signature(agenda, now),
    }


def signature(agenda: Agenda, now: datetime) -> str:
    """A short fingerprint of what the agenda shows: the live poll swaps only when it changes."""
    shown = [
        f"{section}:{lead.id}:{lead.status}:{state_of(lead, now)}"  # type: ignore[arg-type]
        for section in SECTIONS
        for lead in getattr(agenda, section)
    ]
    return hashlib.sha256("|".join(shown).encode()).hexdigest()[:16]


@bp.route("/my-day")
@login_required
def my_day() -> str:
    now, user = utcnow(), me()
    try:
        waiting_in_pool = len(pool_leads(db(), dealer(), user.email))
    except ActionError:
        waiting_in_pool = 0
    return render_template(
        "leads/my_day.html", waiting_in_pool=waiting_in_pool, **day_context(now, user)
    )


@bp.route("/my-day/agenda")
@fragment_login(poll=True)
def agenda_fragment() -> ResponseReturnValue:
    """The agenda alone, for the live poll; 204 (nothing to swap) while it is unchanged."""
    context = day_context(utcnow(), me())
    if request.args.get("known") == context["known"]:
        return Response(status=204)
    return render_template("leads/_agenda.html", oob=True, **context)
