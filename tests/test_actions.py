"""User actions that move a lead's clock: contact, close, resubmission, due date, qualification."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings, load_dealer_config
from mailgate.escalation.actions import (
    ActionError,
    close_lead,
    log_contact,
    move_due,
    restart_clock,
    set_qualification,
    set_resubmission,
)
from mailgate.escalation.scheduler import tick
from mailgate.models import Lead, ProtocolEntry

from .test_escalation import ESCALATING_DEALER, at, ingest_at, mails


@pytest.fixture
def lead(dealer: sessionmaker[Session]) -> int:
    with db.session_scope(dealer) as session:
        import_settings(session, ESCALATING_DEALER)
    return ingest_at(dealer, at("2026-11-27 16:00"))  # stage 1 Monday 10:00


def act(factory: sessionmaker[Session], func, *args) -> None:  # type: ignore[no-untyped-def]
    with db.session_scope(factory) as session:
        func(session, *args)


def actions(factory: sessionmaker[Session], lead_id: int) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(select(ProtocolEntry.action).where(ProtocolEntry.lead_id == lead_id))
        )


def test_a_phone_call_stops_the_ladder(dealer: sessionmaker[Session], lead: int) -> None:
    act(dealer, log_contact, lead, "anna@autohaus.example", at("2026-11-30 08:30"), "phone", "ok")
    tick(dealer, now=at("2026-12-02 12:00"))
    assert mails(dealer, lead) == []
    with dealer() as session:
        row = session.get(Lead, lead)
        assert row.status == "contacted" and row.first_response_at == at("2026-11-30 08:30")
    assert "contact" in actions(dealer, lead)


def test_closing_stops_everything_and_needs_a_reason(
    dealer: sessionmaker[Session], lead: int
) -> None:
    with pytest.raises(ActionError, match="reason"):
        act(dealer, close_lead, lead, "anna@autohaus.example", at("2026-11-30 08:00"), " ")
    act(dealer, close_lead, lead, "anna@autohaus.example", at("2026-11-30 08:00"), "won")
    tick(dealer, now=at("2026-12-02 12:00"))
    assert mails(dealer, lead) == []
    with pytest.raises(ActionError, match="closed"):
        act(dealer, log_contact, lead, "anna@autohaus.example", at("2026-11-30 09:00"))


def test_resubmission_ladder_runs_after_the_answer(
    dealer: sessionmaker[Session], lead: int
) -> None:
    """Answered Monday; resubmission Sunday 10:00 (closed, hours not respected): sent then."""
    act(dealer, log_contact, lead, "anna@autohaus.example", at("2026-11-30 08:30"))
    with dealer() as session:
        cfg = load_dealer_config(session)
    when = at("2026-12-06 10:00")
    with pytest.raises(ActionError, match="future"):
        act(dealer, set_resubmission, cfg, lead, "anna", at("2026-12-07 00:00"), when)
    act(dealer, set_resubmission, cfg, lead, "anna@autohaus.example", at("2026-11-30 09:00"), when)
    tick(dealer, now=at("2026-12-06 09:59"))
    assert mails(dealer, lead) == []
    tick(dealer, now=at("2026-12-06 10:00"))
    tick(dealer, now=at("2026-12-06 18:00"))  # + 8 h (stage2_resubmission default)
    assert [(p, r) for p, r, _ in mails(dealer, lead)] == [
        ("resubmission", ["anna@autohaus.example"]),
        ("stage2", ["chef@autohaus.example"]),
    ]


def test_moving_the_due_date_replans_the_ladder(dealer: sessionmaker[Session], lead: int) -> None:
    with dealer() as session:
        cfg = load_dealer_config(session)
    act(
        dealer,
        move_due,
        cfg,
        lead,
        "anna@autohaus.example",
        at("2026-11-30 08:00"),
        at("2026-12-02 12:00"),
    )
    with dealer() as session:
        row = session.get(Lead, lead)
        assert row.overdue_at == at("2026-12-02 12:00") and row.soon_at == at("2026-12-02 11:00")
    tick(dealer, now=at("2026-11-30 10:00"))  # the old stage 1: nothing any more
    assert mails(dealer, lead) == []
    tick(dealer, now=at("2026-12-02 12:00"))
    assert [p for p, _, _ in mails(dealer, lead)] == ["stage1"]
    [entry] = [a for a in actions(dealer, lead) if a == "due_moved"]
    assert entry


def test_reassignment_restarts_stage_one(dealer: sessionmaker[Session], lead: int) -> None:
    with dealer() as session:
        cfg = load_dealer_config(session)
    act(dealer, restart_clock, cfg, lead, "chef@autohaus.example", at("2026-12-01 14:00"))
    with dealer() as session:
        row = session.get(Lead, lead)
        assert row.overdue_at == at("2026-12-01 18:00") and row.escalation_stage == 0


def test_qualification_targets_and_junk(dealer: sessionmaker[Session], lead: int) -> None:
    with dealer() as session:
        cfg = load_dealer_config(session)
    with dealer() as session:
        before = session.get(Lead, lead).overdue_at
    act(dealer, set_qualification, cfg, lead, "anna", at("2026-11-27 17:00"), "hot")
    with dealer() as session:
        row = session.get(Lead, lead)
        # issue 20 #1: the target is its own due date; the first-response deadline stays
        assert row.qualification == "hot" and row.target_at == at("2026-12-01 18:00")
        assert row.overdue_at == before
    act(dealer, set_qualification, cfg, lead, "anna", at("2026-11-27 17:00"), "junk")
    tick(dealer, now=at("2026-12-10 12:00"))
    assert mails(dealer, lead) == []
    with pytest.raises(ActionError, match="qualification"):
        act(dealer, set_qualification, cfg, lead, "anna", at("2026-11-27 17:00"), "lukewarm")


def test_add_working_days_skips_weekends_and_holidays(dealer: sessionmaker[Session]) -> None:
    with db.session_scope(dealer) as session:
        import_settings(session, ESCALATING_DEALER)
        cal = load_dealer_config(session).calendar
    assert cal.add_working_days(at("2026-11-27 10:00"), 1) == at("2026-11-30 18:00")
    assert cal.add_working_days(at("2026-12-23 10:00"), 2) == at("2026-12-28 18:00")
    assert cal.add_working_days(at("2026-11-23 10:00"), 10) - at("2026-11-23 10:00") > timedelta(
        days=13
    )
