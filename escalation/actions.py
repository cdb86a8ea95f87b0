"""What a user does to a lead that moves its clock: the web UI's and CLI's service functions.

Each function changes one lead in the caller's transaction, writes the
protocol (who, when, what) and never commits.  The rules (DOMAIN.md): a logged
contact (a phone call counts) stops the ladder like an answer by mail; a
resubmission date starts the resubmission ladder; closing stops everything;
a moved due date re-plans reminder and escalations from the new date;
reassignment restarts stage 1 for the new owner; qualification sets a
processing target (hot 2, warm 5, cold 10 working days), and junk never
escalates.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig, parse_duration
from mailgate.models import SALES_STAGES, Lead, LeadStatus
from mailgate.protocol import note as note_phrases
from mailgate.protocol import phrase
from mailgate.protocol_log import log
from mailgate.webhooks.emit import emit

from .calendar import WorkingCalendar
from .feedback import report_status
from .handover import handed_over_problem
from .ladder import NEVER, RESUBMISSION, initial_due_times, reminder_due

QUALIFICATION_DAYS = {"hot": 2, "warm": 5, "cold": 10}
QUALIFICATIONS = (*QUALIFICATION_DAYS, "junk")
CLOSED_STATES = (LeadStatus.CLOSED.value, "deleted")


class ActionError(ValueError):
    """The action does not fit the lead (closed, a date in the past, unknown value)."""


CONTACT_OUTCOMES = ("reached", "not_reached", "left_message")


def log_contact(
    session: Session,
    lead_id: int,
    actor: str,
    now: datetime,
    channel: str = "phone",
    note: str = "",
    *,
    outcome: str = "reached",
    dealer: DealerConfig | None = None,
) -> datetime | None:
    """A contact outside mailgate (phone, visit): only one that reached the customer counts.

    Seed 000's status ladder separates an attempt from a contact: "not reached"
    and "left a message" are attempts.  They do not count as the response (the
    ladder keeps running, the status stays) and schedule a follow-up
    ``escalation.follow_up_after`` of working time later (``dealer`` needed),
    which keeps the lead in My day.  Returns that follow-up time, or None.
    """
    if outcome not in CONTACT_OUTCOMES:
        raise ActionError(f"contact outcome is one of {', '.join(CONTACT_OUTCOMES)}")
    lead = _open_lead(session, lead_id)
    if outcome != "reached":
        if dealer is None:
            raise ActionError("a contact attempt needs the dealer's calendar for its follow-up")
        after = parse_duration(dealer.document["escalation"]["follow_up_after"])
        follow_up = dealer.calendar.add_working_time(now, after)
        _change(session, lead_id, {"last_activity_at": now, "follow_up_at": follow_up})
        code = "contact_not_reached" if outcome == "not_reached" else "contact_left_message"
        what = [phrase(code, channel=channel, follow_up_at=follow_up), *note_phrases(note)]
        tz = dealer.timezone
        log(session, lead_id, actor=actor, action="contact_attempt", what=what, at=now, tz=tz)
        return follow_up
    values: dict[str, object] = {"last_activity_at": now, "follow_up_at": None}
    if lead.first_response_at is None:
        values |= {"first_response_at": now, "next_due_at": None}
    if lead.status in (LeadStatus.NEW, LeadStatus.ASSIGNED):
        values["status"] = LeadStatus.CONTACTED.value
    _change(session, lead_id, values)
    what = [phrase("contact_logged", channel=channel), *note_phrases(note)]
    entry = log(session, lead_id, actor=actor, action="contact", what=what, at=now)
    if "status" in values:
        report_status(session, lead_id, entry_id=entry)
    if "first_response_at" in values:
        emit(session, "lead.answered", lead_id, {"by": actor, "how": channel}, key=f"{now}")
    return None


RUNG_COLUMNS = {
    LeadStatus.TEST_DRIVE.value: "test_drive_at",
    LeadStatus.OFFER.value: "offer_at",
    LeadStatus.CONTRACT.value: "contract_at",
}


def set_stage(session: Session, lead_id: int, actor: str, now: datetime, stage: str) -> str:
    """Move an open lead to a rung of the sales ladder (contacted, test drive, offer, contract).

    Any rung may follow any other: a lead can skip the test drive, or drop back from
    an offer to a second test drive.  Reaching a rung means the customer was dealt
    with, so it counts as the response when none is on record (the ladder of
    reminders stops, as for a logged call); a running resubmission stays.  The
    first time a rung is reached is kept for the reports.  Returns the old status.
    """
    lead = _open_lead(session, lead_id)
    if stage not in SALES_STAGES:
        raise ActionError(f"a lead's stage is one of {', '.join(SALES_STAGES)}")
    was = lead.status
    if was == stage:
        raise ActionError(f"lead {lead_id} is already at {stage}")
    values: dict[str, object] = {"status": stage, "last_activity_at": now, "follow_up_at": None}
    if lead.first_response_at is None:
        values |= {"first_response_at": now, "next_due_at": None}
    rung = RUNG_COLUMNS.get(stage)
    if rung and getattr(lead, rung) is None:
        values[rung] = now
    _change(session, lead_id, values)
    what = phrase("stage_changed", previous_status=was, status=stage)
    entry = log(session, lead_id, actor=actor, action="status", what=what, at=now)
    report_status(session, lead_id, entry_id=entry)
    if "first_response_at" in values:
        emit(session, "lead.answered", lead_id, {"by": actor, "how": stage}, key=f"{now}")
    return was


def close_lead(session: Session, lead_id: int, actor: str, now: datetime, reason: str) -> None:
    """Closed with a completion reason (won / lost / no interest / junk): no more mails.

    ``reason`` is a completion reason code (:mod:`mailgate.completion`) or free
    text; the lead keeps its first 64 characters for reports, the protocol all.
    """
    _open_lead(session, lead_id)
    if not reason.strip():
        raise ActionError("a lead is closed with a reason")
    _change(
        session,
        lead_id,
        {
            "status": LeadStatus.CLOSED.value,
            "next_due_at": None,
            "last_activity_at": now,
            "closed_at": now,
            "close_reason": reason.strip()[:64],
        },
    )
    why = phrase("completion", completion=reason.strip()[:500])
    entry = log(session, lead_id, actor=actor, action="closed", what=why, at=now)
    report_status(session, lead_id, entry_id=entry)
    emit(session, "lead.closed", lead_id, {"by": actor, "reason": reason.strip()}, key=f"{now}")


def set_resubmission(
    session: Session, dealer: DealerConfig, lead_id: int, actor: str, now: datetime, when: datetime
) -> None:
    """Put the lead aside until ``when``; then the assignee is told, and later the supervisor.

    The supervisor's time (``stage2_resubmission``) counts continuously, or
    in working time when *respect working hours for resubmissions* is on.
    """
    lead = _open_lead(session, lead_id)
    if when <= now:
        raise ActionError("a resubmission date lies in the future")
    wait = dealer.escalation_times(lead.source, lead.kind).stage2_resubmission
    if dealer.document["escalation"]["respect_hours_for_resubmissions"]:
        stage2 = dealer.calendar.add_working_time(when, wait)
    else:
        stage2 = when + wait
    _change(
        session,
        lead_id,
        {
            "soon_at": when,
            "overdue_at": when,
            "stage2_at": stage2,
            "escalation_stage": RESUBMISSION,
            "next_due_at": when,
            "last_activity_at": now,
        },
    )
    what = phrase("resubmission_on", when_at=when)
    log(session, lead_id, actor=actor, action="resubmission", what=what, at=now, tz=dealer.timezone)


def move_due(
    session: Session,
    dealer: DealerConfig,
    lead_id: int,
    actor: str,
    now: datetime,
    new_due: datetime,
) -> None:
    """Move stage 1 of one lead; reminder and stage 2 are planned again from it."""
    lead = _open_lead(session, lead_id)
    if new_due <= now:
        raise ActionError("the new due date lies in the future")
    times = dealer.escalation_times(lead.source, lead.kind)
    soon = reminder_due(dealer.calendar, new_due, times.reminder_before, now)
    old = lead.overdue_at
    _change(
        session,
        lead_id,
        {
            "soon_at": soon,
            "overdue_at": new_due,
            "stage2_at": new_due + times.stage2,
            "escalation_stage": 0,
            "next_due_at": soon,
        },
    )
    moved = (
        phrase("due_moved", before_at=old, after_at=new_due)
        if old
        else phrase("due_set", after_at=new_due)
    )
    log(session, lead_id, actor=actor, action="due_moved", what=moved, at=now, tz=dealer.timezone)


def restart_clock(
    session: Session, dealer: DealerConfig, lead_id: int, actor: str, now: datetime
) -> None:
    """A reassigned lead gets stage 1 afresh for its new owner, counted from now."""
    lead = _open_lead(session, lead_id)
    due = initial_due_times(dealer.calendar, dealer.escalation_times(lead.source, lead.kind), now)
    _change(
        session,
        lead_id,
        {
            "soon_at": due.soon_at,
            "overdue_at": due.overdue_at,
            "stage2_at": due.stage2_at,
            "escalation_stage": 0,
            "next_due_at": due.next_due_at,
        },
    )
    what = phrase("clock_restarted")
    log(session, lead_id, actor=actor, action="clock_restarted", what=what, at=now)


def set_qualification(
    session: Session, dealer: DealerConfig, lead_id: int, actor: str, now: datetime, value: str
) -> None:
    """Hot / warm / cold set a processing target in working days; junk stops escalation.

    Seed 004: "Heiß (sehr wichtiger Lead → rasche Leadbearbeitung innerhalb von
    2 Arbeitstagen)".  The target tightens, never loosens: it is a due date of
    its own (``target_at``, mailed to the assignee when missed) and never moves
    the first-response deadline or the supervisor's.
    """
    _open_lead(session, lead_id)
    if value not in QUALIFICATIONS:
        raise ActionError(f"qualification is one of {', '.join(QUALIFICATIONS)}")
    if value == "junk":
        values: dict[str, object] = {
            "escalation_stage": NEVER,
            "next_due_at": None,
            "target_at": None,
            "target_mailed_at": None,
        }
        what = phrase("qualified_junk")
    else:
        # its own due date: the first-response ladder (overdue_at, stage2_at) stays as it is
        target = processing_target(dealer.calendar, now, value)
        values = {"target_at": target, "target_mailed_at": None}
        what = phrase("qualified_target", qualification=value, target_at=target)
    _change(session, lead_id, {"qualification": value, **values})
    log(session, lead_id, actor=actor, action="qualified", what=what, at=now, tz=dealer.timezone)


def processing_target(calendar: WorkingCalendar, now: datetime, qualification: str) -> datetime:
    """Closing time of the 2nd / 5th / 10th working day after ``now`` (hot / warm / cold)."""
    return calendar.add_working_days(now, QUALIFICATION_DAYS[qualification])


def reopen_lead(
    session: Session, dealer: DealerConfig, lead_id: int, actor: str, now: datetime
) -> str:
    """A closed lead becomes open again (the customer came back, closed by mistake).

    A lead that was answered before goes back to ``contacted`` with no clock
    running (the response is already on record); one that never was answered
    goes back to ``assigned`` and gets stage 1 afresh from now, so the owner is
    reminded as for a new lead instead of being escalated at once for the time
    it lay closed.  Returns the new status.
    """
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise ActionError(f"no lead {lead_id}")
    if lead.status != LeadStatus.CLOSED.value:
        raise ActionError(f"lead {lead_id} is {lead.status}: only a closed lead can be reopened")
    was = lead.close_reason or ""
    values: dict[str, object] = {
        "closed_at": None,
        "close_reason": None,
        "last_activity_at": now,
        "escalation_stage": 0,
    }
    if lead.first_response_at is None:
        status = LeadStatus.ASSIGNED.value if lead.assignee_id else LeadStatus.NEW.value
        due = initial_due_times(
            dealer.calendar, dealer.escalation_times(lead.source, lead.kind), now
        )
        values |= {
            "soon_at": due.soon_at,
            "overdue_at": due.overdue_at,
            "stage2_at": due.stage2_at,
            "next_due_at": due.next_due_at,
        }
        what = [phrase("reopened_unanswered")]
    else:
        status = LeadStatus.CONTACTED.value
        values["next_due_at"] = None
        what = [phrase("reopened_answered")]
    _change(session, lead_id, {**values, "status": status})
    if was:
        what.append(phrase("was_closed", completion=was))
    entry = log(session, lead_id, actor=actor, action="reopened", what=what, at=now)
    report_status(session, lead_id, entry_id=entry, dealer=dealer)
    return status


def _open_lead(session: Session, lead_id: int) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise ActionError(f"no lead {lead_id}")
    if lead.status in CLOSED_STATES:
        raise ActionError(f"lead {lead_id} is {lead.status}")
    problem = handed_over_problem(lead)
    if problem:
        raise ActionError(problem)
    return lead


def _change(session: Session, lead_id: int, values: dict[str, object]) -> None:
    session.execute(update(Lead).where(Lead.id == lead_id).values(**values))
    session.expire_all()
