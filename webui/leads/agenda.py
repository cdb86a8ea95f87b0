"""A salesperson's day: what to work on first (pure; the view fetches the candidates).

Order of work (DOMAIN: the customer who waits longest comes first):
1. *overdue* — unanswered leads past their stage-1 time, longest overdue first;
2. *resubmissions* — leads put aside until today or earlier, earliest first;
3. *due today* — unanswered leads whose stage-1 time falls later today, and
   leads whose follow-up (a logged call that did not reach the customer) is due
   today or earlier, soonest first.
Answered leads without a resubmission or follow-up, junk (never escalates) and
closed leads have nothing due and do not appear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mailgate.escalation.ladder import NEVER, RESUBMISSION
from mailgate.models import OPEN_STATUSES

SECTIONS = ("overdue", "resubmission", "today")


class AgendaLead(Protocol):
    id: int
    status: str
    first_response_at: datetime | None
    soon_at: datetime | None
    overdue_at: datetime | None
    escalation_stage: int


@dataclass
class Agenda:
    overdue: list[AgendaLead] = field(default_factory=list)
    resubmission: list[AgendaLead] = field(default_factory=list)
    today: list[AgendaLead] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.overdue) + len(self.resubmission) + len(self.today)


def section_of(lead: AgendaLead, now: datetime, day_end: datetime) -> str | None:
    """Which section ``lead`` belongs in at ``now`` (``day_end``: the local midnight ahead)."""
    if lead.status not in OPEN_STATUSES or lead.escalation_stage >= NEVER:
        return None
    if lead.escalation_stage == RESUBMISSION:
        due = lead.soon_at
        return "resubmission" if due is not None and due < day_end else None
    unanswered = lead.first_response_at is None and lead.overdue_at is not None
    if unanswered and lead.overdue_at is not None and lead.overdue_at <= now:
        return "overdue"
    due_today = today_key(lead)
    return "today" if due_today is not None and due_today < day_end else None


def today_key(lead: AgendaLead) -> datetime | None:
    """The earlier of the unanswered lead's stage-1 time and its follow-up (a call that
    did not reach the customer, seed 000: an attempt is not a contact)."""
    times = [getattr(lead, "follow_up_at", None)]
    if lead.first_response_at is None:
        times.append(lead.overdue_at)
    present = [t for t in times if t is not None]
    return min(present) if present else None


def plan_day(leads: Iterable[AgendaLead], now: datetime, day_end: datetime) -> Agenda:
    agenda = Agenda()
    for lead in leads:
        section = section_of(lead, now, day_end)
        if section is not None:
            getattr(agenda, section).append(lead)
    agenda.overdue.sort(key=lambda lead: (lead.overdue_at, lead.id))
    agenda.resubmission.sort(key=lambda lead: (lead.soon_at, lead.id))
    agenda.today.sort(key=lambda lead: (today_key(lead), lead.id))
    return agenda
