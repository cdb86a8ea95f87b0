"""The functions behind the lead page: reopen, edits, and what the page says about the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import load_dealer_config
from mailgate.distribution.actions import ActionError as DistributionError
from mailgate.distribution.edits import edit_lead, vehicle_changes
from mailgate.escalation.actions import ActionError, close_lead, log_contact, reopen_lead
from mailgate.escalation.ladder import NEVER, RESUBMISSION
from mailgate.models import Customer, Lead, ProtocolEntry
from mailgate.protocol import english
from mailgate.webui.lead.ladder_view import display_state, steps_ahead

from .distribution_helpers import form_mail, ingest

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def a_lead(factory: sessionmaker[Session]) -> int:
    ingest(factory, form_mail(1))
    with factory() as session:
        lead_id = session.scalar(select(Lead.id))
    assert lead_id is not None
    return lead_id


def entries(factory: sessionmaker[Session], lead_id: int) -> list[tuple[str, str]]:
    with factory() as session:
        rows = session.scalars(
            select(ProtocolEntry).where(ProtocolEntry.lead_id == lead_id).order_by(ProtocolEntry.id)
        )
        return [(p.action, p.detail) for p in rows]


def test_reopen_an_unanswered_lead_restarts_the_clock(dealer: sessionmaker[Session]) -> None:
    lead_id = a_lead(dealer)
    later = datetime.now(UTC) + timedelta(days=10)
    with session_scope(dealer) as session:
        close_lead(session, lead_id, "anna@autohaus.example", later, reason="no_interest")
        status = reopen_lead(
            session, load_dealer_config(session), lead_id, "anna@autohaus.example", later
        )
    assert status == "assigned"
    with dealer() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert (lead.status, lead.closed_at, lead.close_reason) == ("assigned", None, None)
        assert lead.overdue_at is not None and lead.overdue_at > later  # from now, not receipt
        assert lead.next_due_at == lead.soon_at and lead.escalation_stage == 0
    assert entries(dealer, lead_id)[-1] == (
        "reopened",
        "reopened; not answered yet: stage 1 restarted; was closed: no_interest",
    )


def test_reopen_an_answered_lead_keeps_it_contacted(dealer: sessionmaker[Session]) -> None:
    lead_id = a_lead(dealer)
    now = datetime.now(UTC)
    with session_scope(dealer) as session:
        log_contact(session, lead_id, "anna@autohaus.example", now)
        close_lead(session, lead_id, "anna@autohaus.example", now, reason="sold")
        reopen_lead(session, load_dealer_config(session), lead_id, "anna@autohaus.example", now)
    with dealer() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert (lead.status, lead.next_due_at) == ("contacted", None)
    with session_scope(dealer) as session, pytest.raises(ActionError, match="only a closed lead"):
        reopen_lead(session, load_dealer_config(session), lead_id, "anna@autohaus.example", now)


def test_edit_validates_first_and_writes_nothing_on_error(dealer: sessionmaker[Session]) -> None:
    lead_id = a_lead(dealer)
    before = entries(dealer, lead_id)
    with session_scope(dealer) as session, pytest.raises(DistributionError, match="e-mail"):
        edit_lead(session, lead_id, "anna@autohaus.example", T0, customer={"email": "kein"})
    with session_scope(dealer) as session:
        assert edit_lead(session, lead_id, "anna@autohaus.example", T0, vehicle={}) == []
        changes = edit_lead(
            session,
            lead_id,
            "anna@autohaus.example",
            T0,
            customer={"last_name": "Müller", "name": "Hans  Müller", "street": "Hauptstraße 1"},
        )
    assert [english([c]) for c in changes] == [
        "customer last_name: Nummer1 -> Müller",
        "customer name: Kundin Nummer1 -> Hans Müller",
        "customer street: – -> Hauptstraße 1",
    ]
    assert entries(dealer, lead_id) == [*before, ("edited", english(changes))]
    with dealer() as session:
        customer = session.scalar(select(Customer))
        assert customer is not None
        # Matching keys follow the correction, so the customer is found next time.
        assert (customer.match_name, customer.match_street) == ("kundin mueller", "hauptstr1")


def test_vehicle_changes_parse_german_numbers() -> None:
    current = {"make": "Opel", "price": 10000}
    new, changes = vehicle_changes(current, {"price": "12.990,50 €", "mileage": "45.000 km"})
    assert new == {"make": "Opel", "price": 12990.5, "mileage": 45000}
    assert changes == [("price", "10000", "12990.5"), ("mileage", "–", "45000")]
    assert vehicle_changes(current, {"make": " Opel ", "price": "10000"}) == (current, [])
    assert vehicle_changes(current, {"make": ""})[0] == {"price": 10000}
    with pytest.raises(DistributionError, match="negative"):
        vehicle_changes(current, {"price": "-5"})


@dataclass
class Clock:
    status: str = "assigned"
    first_response_at: datetime | None = None
    soon_at: datetime | None = T0 + timedelta(hours=3)
    overdue_at: datetime | None = T0 + timedelta(hours=4)
    stage2_at: datetime | None = T0 + timedelta(hours=28)
    escalation_stage: int = 0


class OpenAtNine:
    """Open every day from 09:00 UTC (enough to tell due time and send time apart)."""

    def next_open(self, moment: datetime) -> datetime:
        if moment.hour >= 9:
            return moment
        return moment.replace(hour=9, minute=0)

    send_time = next_open  # no closing time in this fake


def test_display_state() -> None:
    assert display_state(Clock(), T0) == "ok"
    assert display_state(Clock(), T0 + timedelta(hours=3)) == "soon"
    assert display_state(Clock(), T0 + timedelta(hours=5)) == "overdue"
    # Answered: the stored due times are history.
    assert display_state(Clock(first_response_at=T0), T0 + timedelta(hours=5)) == "ok"
    assert display_state(Clock(escalation_stage=NEVER), T0 + timedelta(hours=5)) == "paused"
    waiting = Clock(escalation_stage=RESUBMISSION, first_response_at=T0)
    assert display_state(waiting, T0) == "resubmission"
    assert display_state(waiting, T0 + timedelta(hours=3, minutes=1)) == "soon"
    assert display_state(Clock(status="closed"), T0) is None


def test_steps_ahead_by_stage() -> None:
    calendar = OpenAtNine()

    def purposes(clock: Clock) -> list[tuple[str, str]]:
        return [(s.purpose, s.recipient) for s in steps_ahead(clock, calendar)]

    assert purposes(Clock()) == [
        ("reminder", "assignee"),
        ("stage1", "assignee"),
        ("stage2", "supervisor"),
    ]
    assert purposes(Clock(escalation_stage=1)) == [("stage1", "assignee"), ("stage2", "supervisor")]
    assert purposes(Clock(escalation_stage=3)) == []
    assert purposes(Clock(first_response_at=T0)) == []
    assert purposes(Clock(escalation_stage=NEVER)) == []
    assert purposes(Clock(status="closed")) == []
    assert purposes(Clock(escalation_stage=RESUBMISSION, first_response_at=T0)) == [
        ("resubmission", "assignee"),
        ("stage2", "supervisor"),
    ]
    assert purposes(Clock(escalation_stage=RESUBMISSION + 1)) == [("stage2", "supervisor")]
    night = Clock(soon_at=T0.replace(hour=3))
    first = steps_ahead(night, calendar)[0]
    assert (first.due_at.hour, first.send_at.hour) == (3, 9)
