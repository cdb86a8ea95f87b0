""" "My day": the page a salesperson opens in the morning (their own leads, in working order).

The selection in SQL is generous (open, own, something due before tonight);
:mod:`.agenda` decides the section and order, so page and tests share one rule.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, render_template
from flask_login import login_required
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from mailgate.distribution.actions import ActionError, pool_leads
from mailgate.escalation.ladder import NEVER, RESUBMISSION
from mailgate.models import OPEN_STATUSES, Lead, utcnow

from ..access import me
from ..context import db, dealer
from .agenda import plan_day
from .due import state_of

bp = Blueprint("my_day", __name__)
MAX_LEADS = 500  # more than a day's work; the list's filters show the rest


def day_end(now: datetime) -> datetime:
    """The next local midnight in the dealer's time zone, as an aware instant."""
    zone = dealer().timezone
    today = now.astimezone(zone).date()
    return datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)


@bp.route("/my-day")
@login_required
def my_day() -> str:
    now, user = utcnow(), me()
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
    try:
        waiting_in_pool = len(pool_leads(db(), dealer(), user.email))
    except ActionError:
        waiting_in_pool = 0
    return render_template(
        "leads/my_day.html",
        agenda=agenda,
        state_of=lambda lead: state_of(lead, now),
        waiting_in_pool=waiting_in_pool,
        capped=len(agenda) >= MAX_LEADS,
    )
