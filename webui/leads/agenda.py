"""A salesperson's day: what to work on first (pure; the view fetches the candidates).

Order of work (DOMAIN: the customer who waits longest comes first):
1. *overdue* — unanswered leads past their stage-1 time, longest overdue first;
2. *resubmissions* — leads put aside until today or earlier, earliest first;
3. *due today* — unanswered leads whose stage-1 time falls later today, soonest first.
Answered leads without a resubmission, junk (never escalates) and closed leads
have nothing due and do not appear.
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
    if lead.first_response_at is not None or lead.overdue_at is None:
        return None
    if lead.overdue_at <= now:
        return "overdue"
    return "today" if lead.overdue_at < day_end else None


def plan_day(leads: Iterable[AgendaLead], now: datetime, day_end: datetime) -> Agenda:
    agenda = Agenda()
    for lead in leads:
        section = section_of(lead, now, day_end)
        if section is not None:
            getattr(agenda, section).append(lead)
    agenda.overdue.sort(key=lambda lead: (lead.overdue_at, lead.id))
    agenda.resubmission.sort(key=lambda lead: (lead.soon_at, lead.id))
    agenda.today.sort(key=lambda lead: (lead.overdue_at, lead.id))
    return agenda
