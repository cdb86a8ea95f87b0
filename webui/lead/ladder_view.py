"""What the lead page says about the clock: its due state and the rungs still ahead.

Pure functions over a lead's stored due times (``soon_at``, ``overdue_at``,
``stage2_at``, ``escalation_stage``), so the page shows exactly what the
scheduler will do, not a recomputation that could disagree with it.  A lead
that was answered (a mail reply or a logged call) has no clock any more; its
stored due times are history, so the state is "ok", not "overdue".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailgate.escalation.ladder import NEVER, RESUBMISSION, due_state
from mailgate.models import OPEN_STATUSES


class LeadClock(Protocol):
    status: str
    first_response_at: datetime | None
    soon_at: datetime | None
    overdue_at: datetime | None
    stage2_at: datetime | None
    escalation_stage: int


class Opening(Protocol):
    def send_time(self, moment: datetime) -> datetime: ...


@dataclass(frozen=True)
class Step:
    """One mail the scheduler will send about this lead."""

    purpose: str  # reminder | stage1 | stage2 | resubmission
    recipient: str  # assignee | supervisor
    due_at: datetime  # drives the lead's colour
    send_at: datetime  # the mail leaves then (next opening time, or at a closing time)


def display_state(lead: LeadClock, now: datetime) -> str | None:
    """ok / soon / overdue, ``resubmission`` while put aside, ``paused`` for junk; None closed."""
    if lead.status not in OPEN_STATUSES:
        return None
    stage = lead.escalation_stage or 0
    if stage == NEVER:
        return "paused"
    if stage >= RESUBMISSION:
        if stage == RESUBMISSION and lead.soon_at is not None and now < lead.soon_at:
            return "resubmission"
        return due_state(now, lead.soon_at, lead.overdue_at)
    if lead.first_response_at is not None:
        return "ok"
    return due_state(now, lead.soon_at, lead.overdue_at)


def steps_ahead(lead: LeadClock, calendar: Opening) -> list[Step]:
    """The escalation mails still to come, in order (empty: answered, closed or junk)."""
    if lead.status not in OPEN_STATUSES:
        return []
    stage = lead.escalation_stage or 0
    if stage == NEVER:
        return []
    if stage >= RESUBMISSION:
        planned = [("resubmission", "assignee", lead.soon_at)] if stage == RESUBMISSION else []
        if stage <= RESUBMISSION + 1:
            planned.append(("stage2", "supervisor", lead.stage2_at))
    else:
        if lead.first_response_at is not None:
            return []
        ladder = [
            ("reminder", "assignee", lead.soon_at),
            ("stage1", "assignee", lead.overdue_at),
            ("stage2", "supervisor", lead.stage2_at),
        ]
        planned = ladder[stage:]
    steps = [
        Step(purpose, recipient, due, calendar.send_time(due))
        for purpose, recipient, due in planned
        if due is not None
    ]
    # seed 002: a reminder that could only leave at or after stage 1 is not sent
    return [
        step
        for step in steps
        if not (
            step.purpose == "reminder"
            and lead.overdue_at is not None
            and step.send_at >= lead.overdue_at
        )
    ]
