"""The due state of a lead as the list shows it, in Python and as the same rule in SQL.

Colour *and* text: ``ok`` / ``soon`` / ``overdue`` come from the escalation
ladder (:func:`mailgate.escalation.ladder.due_state`); grey states say the
clock is not running: ``resubmission`` (put aside until a date that has not
come yet), ``paused`` (qualified junk: never escalates) and ``closed``
(closed or deleted).  The list filter uses :func:`state_condition`, which must
agree with :func:`display_state` row by row (a test checks both on one set).
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, not_

from mailgate.escalation.ladder import NEVER, RESUBMISSION, due_state
from mailgate.models import OPEN_STATUSES, Lead

STATES = ("ok", "soon", "overdue", "resubmission", "paused", "closed")
GREY = frozenset({"resubmission", "paused", "closed"})
LABELS = {
    "ok": _l("ok"),
    "soon": _l("due soon"),
    "overdue": _l("overdue"),
    "resubmission": _l("resubmission"),
    "paused": _l("paused"),
    "closed": _l("closed"),
}


def state_label(state: str) -> str:
    """The state's text (shown beside its colour, never colour alone)."""
    return str(LABELS.get(state, state))


def display_state(
    now: datetime,
    status: str,
    stage: int,
    soon_at: datetime | None,
    overdue_at: datetime | None,
    answered: bool = False,
) -> str:
    """One of :data:`STATES` for a lead at ``now``.

    An answered lead (``first_response_at`` set) is ``ok`` however old its stage-1
    time: answering stops the ladder but leaves ``soon_at``/``overdue_at`` in place.
    Only a resubmission (stage >= RESUBMISSION) runs a clock again after that.
    """
    if status not in OPEN_STATUSES:
        return "closed"
    if stage >= NEVER:
        return "paused"
    if stage == RESUBMISSION and soon_at is not None and now < soon_at:
        return "resubmission"
    if answered and stage < RESUBMISSION:
        return "ok"
    return due_state(now, soon_at, overdue_at)


def state_of(lead: Lead, now: datetime) -> str:
    return display_state(
        now,
        lead.status,
        lead.escalation_stage,
        lead.soon_at,
        lead.overdue_at,
        answered=lead.first_response_at is not None,
    )


def state_condition(state: str, now: datetime) -> ColumnElement[bool]:
    """The SQL condition selecting the leads whose :func:`display_state` is ``state``."""
    is_open = Lead.status.in_(OPEN_STATUSES)
    waiting = and_(
        Lead.escalation_stage == RESUBMISSION, Lead.soon_at.is_not(None), Lead.soon_at > now
    )
    running = and_(is_open, Lead.escalation_stage < NEVER, not_(waiting))
    answered = and_(Lead.first_response_at.is_not(None), Lead.escalation_stage < RESUBMISSION)
    overdue = and_(not_(answered), Lead.overdue_at.is_not(None), Lead.overdue_at <= now)
    soon = and_(not_(answered), Lead.soon_at.is_not(None), Lead.soon_at <= now)
    conditions: dict[str, ColumnElement[bool]] = {
        "closed": not_(is_open),
        "paused": and_(is_open, Lead.escalation_stage >= NEVER),
        "resubmission": and_(is_open, waiting),
        "overdue": and_(running, overdue),
        "soon": and_(running, not_(overdue), soon),
        "ok": and_(running, not_(overdue), not_(soon)),
    }
    return conditions[state]


__all__ = [
    "GREY",
    "LABELS",
    "STATES",
    "display_state",
    "state_condition",
    "state_label",
    "state_of",
]
