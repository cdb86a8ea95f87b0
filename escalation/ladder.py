"""Pure escalation arithmetic: from receipt and the configured times to due times.

The four times of DOMAIN.md (seed 002: "Lediglich die Eskalationsstufe 1 nimmt
Bezug auf die eingetragenen Öffnungszeiten. Alle anderen Zeiten gelten
durchgehend"): stage 1 is counted in *working* time from receipt; the reminder
lies ``reminder_before`` of *continuous* time before stage 1; stage 2 follows
the moment the stage-1 mail reached the salesperson after ``stage2`` of
*elapsed* time (nights, Sundays and holidays included: 24 h across a DST change
are 24 real hours).  Mails to staff leave only while the dealer is open (seed
002: "Informations E-Mails an Nutzer / Vorgesetzte werden nur innerhalb der
eingetragenen Öffnungszeiten versendet"): a mail due at night is *sent* at the
next opening time, one due exactly at closing time leaves at closing time, and
a reminder that could only leave at or after stage 1 is skipped.

Worked example, open Mon-Fri 08:00-18:00, stage 1 = 4 h, reminder 1 h before,
stage 2 = 24 h; a lead received Friday 16:00:

- stage 1: 2 h on Friday + 2 h on Monday -> Monday 10:00;
- reminder: 1 h before that -> Monday 09:00;
- stage 2: the stage-1 mail leaves Monday 10:00, + 24 h -> Tuesday 10:00.

Received Friday 14:30 instead: stage 1 Monday 08:30; the reminder is due
Monday 07:30 (continuous time), while closed, so it leaves at 08:00.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .calendar import WorkingCalendar

TIME_KEYS = ("stage1", "reminder_before", "stage2", "stage2_resubmission")


@dataclass(frozen=True)
class EscalationTimes:
    """The four configured durations, after per-source/kind overrides."""

    stage1: timedelta
    reminder_before: timedelta
    stage2: timedelta
    stage2_resubmission: timedelta
    rule: str | None = None  # which override applied, for the protocol and the dry run


@dataclass(frozen=True)
class DueTimes:
    soon_at: datetime  # reminder: due state turns "soon"
    overdue_at: datetime  # stage 1: due state turns "overdue"
    stage2_at: datetime  # the supervisor escalation
    next_due_at: datetime  # the next moment the scheduler must look at the lead


@dataclass(frozen=True)
class Timeline:
    """Every escalation instant of one lead, each with the time its mail may leave."""

    received_at: datetime
    reminder_at: datetime
    stage1_at: datetime
    stage2_at: datetime
    reminder_send_at: datetime
    stage1_send_at: datetime
    stage2_send_at: datetime

    @property
    def reminder_skipped(self) -> bool:
        """A reminder that could only leave at or after stage 1 is not sent at all."""
        return self.reminder_send_at >= self.stage1_at

    def mails(self) -> list[dict[str, Any]]:
        """The mails this ladder produces, in order (the ``mailgate timeline`` JSON)."""
        reminder = (
            []
            if self.reminder_skipped
            else [_mail("reminder", "assignee", self.reminder_at, self.reminder_send_at)]
        )
        return [
            *reminder,
            _mail("stage1", "assignee", self.stage1_at, self.stage1_send_at),
            _mail("stage2", "supervisor", self.stage2_at, self.stage2_send_at),
        ]


def _mail(purpose: str, to: str, due: datetime, send: datetime) -> dict[str, Any]:
    return {"purpose": purpose, "to": to, "due_at": due.isoformat(), "send_at": send.isoformat()}


def times_for(
    defaults: EscalationTimes,
    rules: Sequence[Mapping[str, Any]],
    *,
    source: str,
    kind: str,
    parse_duration: Any,
) -> EscalationTimes:
    """The defaults overridden by the first rule whose ``match`` fits the lead.

    ``match = {source = ["oem:*"], kind = ["test_drive"]}``: every given key
    must match (glob patterns, case-insensitive); an empty match never fits,
    so a rule cannot silently apply to everything.
    """
    values = {"source": source.lower(), "kind": kind.lower()}
    for index, rule in enumerate(rules):
        match = rule.get("match") or {}
        if not match:
            continue
        fits = all(
            any(fnmatch.fnmatchcase(values.get(key, ""), p.lower()) for p in patterns)
            for key, patterns in match.items()
        )
        if fits:
            changes = {k: parse_duration(rule[k]) for k in TIME_KEYS if k in rule}
            return replace(defaults, **changes, rule=f"escalation.rules[{index}]")
    return defaults


def timeline(calendar: WorkingCalendar, times: EscalationTimes, received_at: datetime) -> Timeline:
    """All instants for a lead received at ``received_at`` (see the module example)."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    received = received_at.astimezone(calendar.zone)
    stage1 = calendar.add_working_time(received, times.stage1)
    reminder = reminder_due(calendar, stage1, times.reminder_before, received)
    stage1_sent = calendar.send_time(stage1)
    stage2 = _elapsed(stage1_sent, times.stage2, calendar)
    return Timeline(
        received_at=received,
        reminder_at=reminder,
        stage1_at=stage1,
        stage2_at=stage2,
        reminder_send_at=calendar.send_time(reminder),
        stage1_send_at=stage1_sent,
        stage2_send_at=calendar.send_time(stage2),
    )


def reminder_due(
    calendar: WorkingCalendar, stage1: datetime, before: timedelta, not_before: datetime
) -> datetime:
    """``stage1 - before`` in continuous time (seed 002), never before ``not_before``.

    Why continuous: only stage 1 refers to the opening hours ("Alle anderen
    Zeiten gelten durchgehend"); a reminder 1 h before a Monday 08:30 deadline
    is due Monday 07:30 and leaves at opening, not on Friday afternoon.
    """
    return max(not_before.astimezone(calendar.zone), _elapsed(stage1, -before, calendar))


CLOSING_GRACE = timedelta(minutes=15)


def staff_window(calendar: WorkingCalendar, now: datetime) -> datetime | None:
    """Staff mails due up to this instant may leave at ``now``; None: none may.

    While open: everything due by now.  Closed: what was due by the last closing
    time, for :data:`CLOSING_GRACE` after it (a deadline "by 13:00" on Saturday
    is mailed at 13:00, not on Monday); later, nothing until the next opening.
    """
    if calendar.is_open(now):
        return now
    closing = calendar.last_closing(now)
    if now.astimezone(UTC) - closing.astimezone(UTC) <= CLOSING_GRACE:
        return closing
    return None


def _elapsed(start: datetime, duration: timedelta, calendar: WorkingCalendar) -> datetime:
    """``start + duration`` of real time (UTC arithmetic), shown in the dealer's zone."""
    return (start.astimezone(UTC) + duration).astimezone(calendar.zone)


def initial_due_times(
    calendar: WorkingCalendar, times: EscalationTimes, received_at: datetime
) -> DueTimes:
    """Reminder and stage-1 instants of a new lead; the scheduler looks first at the reminder."""
    line = timeline(calendar, times, received_at)
    return DueTimes(
        soon_at=line.reminder_at,
        overdue_at=line.stage1_at,
        stage2_at=line.stage2_at,
        next_due_at=line.reminder_at,
    )


@dataclass(frozen=True)
class Progress:
    """What one scheduler look at a lead decides: mails to send, the new stage, next look.

    ``stage2_at`` is the supervisor's due time, moved on when the stage-1 (or
    resubmission) mail leaves only now: stage 2 counts from that moment.
    """

    purposes: tuple[str, ...]
    stage: int
    next_due_at: datetime | None
    stage2_at: datetime | None = None


def restarted_stage2(
    now: datetime, rung_due: datetime, stage2_at: datetime | None
) -> datetime | None:
    """Stage 2 counted from ``now``, when the rung due at ``rung_due`` actually left.

    Seed 002: stage 2 is "der Zeitraum zwischen der Eskalation einer Anfrage
    beim Verkäufer und der Information / Eskalation an einen Vorgesetzten".  A
    stage-1 mail that could only leave Monday 08:00 (deadline Saturday night)
    gives the salesperson the whole stage-2 period from Monday 08:00, instead
    of the supervisor hearing in the same minute.  The period is the planned
    gap between the rung and stage 2 (never less than planned).
    """
    if stage2_at is None:
        return None
    gap = stage2_at.astimezone(UTC) - rung_due.astimezone(UTC)
    if gap <= timedelta(0):
        return stage2_at
    return max(stage2_at, now + gap)


def advance(
    stage: int, now: datetime, soon_at: datetime, overdue_at: datetime, stage2_at: datetime | None
) -> Progress:
    """The ladder's next rungs at ``now``, skipping what a later rung makes stale.

    Stage 0 -> reminder (1) -> stage-1 escalation (2) -> supervisor (3).  After
    downtime a reminder whose stage 1 has passed is skipped in favour of the
    escalation, so a restart never sends a burst of stale mails.  Stage 2
    counts from the moment the stage-1 mail leaves (:func:`restarted_stage2`),
    so it never follows that mail in the same pass.
    """
    if stage >= RESUBMISSION:
        return _advance_resubmission(stage, now, soon_at, stage2_at)
    purposes: list[str] = []
    if stage < 2 and now >= overdue_at:
        purposes.append("stage1")
        stage = 2
        stage2_at = restarted_stage2(now, overdue_at, stage2_at)
    elif stage < 1 and now >= soon_at:
        purposes.append("reminder")
        stage = 1
    elif stage == 2 and stage2_at is not None and now >= stage2_at:
        purposes.append("stage2")
        stage = 3
    next_due = {0: soon_at, 1: overdue_at, 2: stage2_at}.get(stage)
    return Progress(tuple(purposes), stage, next_due, stage2_at)


RESUBMISSION = 10  # stages 10..12: the ladder of a resubmission ("Wiedervorlage")
NEVER = 99  # junk: no escalation at all


def _advance_resubmission(
    stage: int, now: datetime, resubmit_at: datetime, stage2_at: datetime | None
) -> Progress:
    """10 waiting -> 11 the assignee is told the date has come -> 12 the supervisor is told.

    As on the first ladder, the supervisor's time counts from the moment the
    assignee's mail left.
    """
    purposes: list[str] = []
    if stage == RESUBMISSION and now >= resubmit_at:
        purposes.append("resubmission")
        stage += 1
        stage2_at = restarted_stage2(now, resubmit_at, stage2_at)
    elif stage == RESUBMISSION + 1 and stage2_at is not None and now >= stage2_at:
        purposes.append("stage2")
        stage += 1
    next_due = {RESUBMISSION: resubmit_at, RESUBMISSION + 1: stage2_at}.get(stage)
    return Progress(tuple(purposes), stage, next_due, stage2_at)


def due_state(now: datetime, soon_at: datetime | None, overdue_at: datetime | None) -> str:
    """``ok`` before the reminder, ``soon`` from it, ``overdue`` from stage 1."""
    if overdue_at is not None and now >= overdue_at:
        return "overdue"
    if soon_at is not None and now >= soon_at:
        return "soon"
    return "ok"
