"""The lead's place on the sales ladder: new → contacted → test drive → offer → contract → closed.

Pure: the page shows each rung with the time the lead first reached it, the
current rung marked (in text and for screen readers, not by colour alone), and
offers the next rung as the default of the status form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailgate.models import SALES_STAGES, LeadStatus

LADDER = (LeadStatus.NEW.value, *SALES_STAGES, LeadStatus.CLOSED.value)


class LadderLead(Protocol):
    status: str
    received_at: datetime
    first_response_at: datetime | None
    test_drive_at: datetime | None
    offer_at: datetime | None
    contract_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True)
class Rung:
    code: str  # a lead status
    reached_at: datetime | None  # first time on this rung (None: never, or not recorded)
    state: str  # done | current | ahead


def sales_ladder(lead: LadderLead) -> list[Rung]:
    """Every rung in order; a deleted lead has no current rung."""
    reached = (
        lead.received_at,
        lead.first_response_at,
        lead.test_drive_at,
        lead.offer_at,
        lead.contract_at,
        lead.closed_at,
    )
    status = LeadStatus.NEW.value if lead.status == LeadStatus.ASSIGNED.value else lead.status
    current = LADDER.index(status) if status in LADDER else -1
    rungs = []
    for index, (code, when) in enumerate(zip(LADDER, reached, strict=True)):
        if index == current:
            state = "current"
        elif index < current or (current < 0 and when is not None):
            state = "done"
        else:
            state = "ahead"
        rungs.append(Rung(code, when, state))
    return rungs


def next_stage(status: str) -> str:
    """The rung after ``status`` (the form's default); the last rung stays selected."""
    if status not in SALES_STAGES:
        return SALES_STAGES[0]
    return SALES_STAGES[min(SALES_STAGES.index(status) + 1, len(SALES_STAGES) - 1)]
