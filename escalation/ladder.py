"""Pure escalation arithmetic: from receipt and the configured times to due times.

The four times of DOMAIN.md: stage 1 is counted in *working* time from
receipt; the reminder lies ``reminder_before`` of working time before stage 1;
stage 2 follows stage 1 after ``stage2`` of *elapsed* time (nights, Sundays and
holidays included: 24 h across a DST change are 24 real hours).  Mails to staff
leave only while the dealer is open: a mail due at night is *sent* at the next
opening time, but its due time still drives the lead's colour.

Worked example, open Mon-Fri 08:00-18:00, stage 1 = 4 h, reminder 1 h before,
stage 2 = 24 h; a lead received Friday 16:00:

- stage 1: 2 h on Friday + 2 h on Monday -> Monday 10:00;
- reminder: 1 h of working time before that -> Monday 09:00;
- stage 2: Monday 10:00 + 24 h -> Tuesday 10:00 (sent then: the shop is open).
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

    def mails(self) -> list[dict[str, Any]]:
        """The mails this ladder produces, in order (the ``mailgate timeline`` JSON)."""
        return [
            _mail("reminder", "assignee", self.reminder_at, self.reminder_send_at),
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
    reminder = max(received, calendar.subtract_working_time(stage1, times.reminder_before))
    stage2 = _elapsed(stage1, times.stage2, calendar)
    return Timeline(
        received_at=received,
        reminder_at=reminder,
        stage1_at=stage1,
        stage2_at=stage2,
        reminder_send_at=calendar.next_open(reminder),
        stage1_send_at=calendar.next_open(stage1),
        stage2_send_at=calendar.next_open(stage2),
    )


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
    """What one scheduler look at a lead decides: mails to send, the new stage, next look."""

    purposes: tuple[str, ...]
    stage: int
    next_due_at: datetime | None


def advance(
    stage: int, now: datetime, soon_at: datetime, overdue_at: datetime, stage2_at: datetime | None
) -> Progress:
    """The ladder's next rungs at ``now``, skipping what a later rung makes stale.

    Stage 0 -> reminder (1) -> stage-1 escalation (2) -> supervisor (3).  After
    downtime a reminder whose stage 1 has passed is skipped in favour of the
    escalation, so a restart never sends a burst of stale mails; stage 2 is a
    different recipient (the supervisor) and still goes out when it is due.
    """
    if stage >= RESUBMISSION:
        return _advance_resubmission(stage, now, soon_at, stage2_at)
    purposes: list[str] = []
    if stage < 2 and now >= overdue_at:
        purposes.append("stage1")
        stage = 2
    elif stage < 1 and now >= soon_at:
        purposes.append("reminder")
        stage = 1
    if stage == 2 and stage2_at is not None and now >= stage2_at:
        purposes.append("stage2")
        stage = 3
    next_due = {0: soon_at, 1: overdue_at, 2: stage2_at}.get(stage)
    return Progress(tuple(purposes), stage, next_due)


RESUBMISSION = 10  # stages 10..12: the ladder of a resubmission ("Wiedervorlage")
NEVER = 99  # junk: no escalation at all


def _advance_resubmission(
    stage: int, now: datetime, resubmit_at: datetime, stage2_at: datetime | None
) -> Progress:
    """10 waiting -> 11 the assignee is told the date has come -> 12 the supervisor is told."""
    purposes: list[str] = []
    if stage == RESUBMISSION and now >= resubmit_at:
        purposes.append("resubmission")
        stage += 1
    if stage == RESUBMISSION + 1 and stage2_at is not None and now >= stage2_at:
        purposes.append("stage2")
        stage += 1
    next_due = {RESUBMISSION: resubmit_at, RESUBMISSION + 1: stage2_at}.get(stage)
    return Progress(tuple(purposes), stage, next_due)


def due_state(now: datetime, soon_at: datetime | None, overdue_at: datetime | None) -> str:
    """``ok`` before the reminder, ``soon`` from it, ``overdue`` from stage 1."""
    if overdue_at is not None and now >= overdue_at:
        return "overdue"
    if soon_at is not None and now >= soon_at:
        return "soon"
    return "ok"
