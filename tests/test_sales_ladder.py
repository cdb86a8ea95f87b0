"""The sales ladder (new → contacted → test drive → offer → contract → closed): the service
function, the lead page's form and ladder, the list's status column and filter.  Both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.escalation.actions import ActionError, close_lead, set_stage
from mailgate.escalation.ladder import RESUBMISSION
from mailgate.models import Lead
from mailgate.webui.lead.sales_ladder import next_stage, sales_ladder

from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ANNA,
    BEN,
    app_fixture,
    body,
    new_lead,
    team_fixture,
)
from .test_webui_lead_actions import act, flashes
from .test_webui_lead_services import a_lead, entries
from .webui_helpers import logged_in, post

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def lead_of(factory: sessionmaker[Session], lead_id: int) -> Lead:
    with factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return lead


def test_climbing_the_ladder_records_each_rung_once(dealer: sessionmaker[Session]) -> None:
    lead_id = a_lead(dealer)
    assert lead_of(dealer, lead_id).first_response_at is None
    with session_scope(dealer) as session:
        assert set_stage(session, lead_id, ANNA, T0, "test_drive") == "assigned"
    lead = lead_of(dealer, lead_id)
    # a test drive means the customer was dealt with: it is the response, the reminders stop
    assert (lead.status, lead.first_response_at, lead.test_drive_at) == ("test_drive", T0, T0)
    assert lead.next_due_at is None
    later = T0 + timedelta(days=3)
    with session_scope(dealer) as session:
        set_stage(session, lead_id, ANNA, later, "offer")
        set_stage(session, lead_id, ANNA, later + timedelta(hours=1), "test_drive")  # a second one
        set_stage(session, lead_id, ANNA, later + timedelta(days=1), "contract")
    lead = lead_of(dealer, lead_id)
    assert lead.status == "contract" and lead.first_response_at == T0
    assert (lead.test_drive_at, lead.offer_at) == (T0, later)  # first time kept
    assert lead.contract_at == later + timedelta(days=1)
    assert entries(dealer, lead_id)[-4:] == [
        ("status", "status assigned → test_drive"),
        ("status", "status test_drive → offer"),
        ("status", "status offer → test_drive"),
        ("status", "status test_drive → contract"),
    ]


def test_wrong_stages_are_refused_and_change_nothing(dealer: sessionmaker[Session]) -> None:
    lead_id = a_lead(dealer)
    before = entries(dealer, lead_id)
    for stage in ("new", "assigned", "closed", "deleted", "sold"):
        with session_scope(dealer) as session, pytest.raises(ActionError, match="stage is one of"):
            set_stage(session, lead_id, ANNA, T0, stage)
    with session_scope(dealer) as session:
        set_stage(session, lead_id, ANNA, T0, "contacted")
    with session_scope(dealer) as session, pytest.raises(ActionError, match="already at"):
        set_stage(session, lead_id, ANNA, T0, "contacted")
    with session_scope(dealer) as session:
        close_lead(session, lead_id, ANNA, T0, reason="sold")
    with session_scope(dealer) as session, pytest.raises(ActionError, match="is closed"):
        set_stage(session, lead_id, ANNA, T0, "offer")
    assert len(entries(dealer, lead_id)) == len(before) + 2  # contacted + closed only


def test_a_resubmission_keeps_running_after_a_stage(dealer: sessionmaker[Session]) -> None:
    lead_id = a_lead(dealer)
    due = T0 + timedelta(days=2)
    with session_scope(dealer) as session:
        set_stage(session, lead_id, ANNA, T0, "contacted")
        session.execute(
            Lead.__table__.update()
            .where(Lead.__table__.c.id == lead_id)
            .values(escalation_stage=RESUBMISSION, next_due_at=due)
        )
        set_stage(session, lead_id, ANNA, T0 + timedelta(hours=1), "offer")
    lead = lead_of(dealer, lead_id)
    assert (lead.escalation_stage, lead.next_due_at) == (RESUBMISSION, due)


def test_ladder_view_marks_the_current_rung_and_offers_the_next() -> None:
    class FakeLead:
        status = "offer"
        received_at = T0
        first_response_at = T0 + timedelta(hours=1)
        test_drive_at = None  # skipped
        offer_at = T0 + timedelta(days=2)
        contract_at = None
        closed_at = None

    rungs = sales_ladder(FakeLead())
    assert [(r.code, r.state) for r in rungs] == [
        ("new", "done"),
        ("contacted", "done"),
        ("test_drive", "done"),
        ("offer", "current"),
        ("contract", "ahead"),
        ("closed", "ahead"),
    ]
    assert rungs[2].reached_at is None and rungs[3].reached_at == FakeLead.offer_at
    assert [next_stage(s) for s in ("assigned", "contacted", "offer", "contract")] == [
        "contacted",
        "test_drive",
        "contract",
        "contract",
    ]


def test_lead_page_moves_the_lead_and_the_list_filters_by_status(
    team: sessionmaker[Session], app: Flask
) -> None:
    first, second = new_lead(team, 1, ANNA), new_lead(team, 2, ANNA)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{first}")
    current = re.search(
        r'<li class="rung rung-current" aria-current="step">\s*'
        r'<span class="rung-name">([^<]+)</span>',
        page,
    )
    assert current and current.group(1) == "neu"
    assert re.search(
        r'<option selected value="contacted">|<option value="contacted" selected', page
    )
    page = act(anna, first, "stage", {"stage": "test_drive"})
    assert flashes(page) == [("success", "Status gesetzt: Probefahrt.")]
    assert '<span class="rung-name">Probefahrt</span>' in page
    assert "Status zugewiesen → Probefahrt" in page  # the protocol, in German
    page = act(anna, first, "stage", {"stage": "test_drive"})
    assert flashes(page) == [
        ("error", "Nicht ausgeführt: Die Anfrage hat bereits den Status Probefahrt.")
    ]
    response = anna.post(f"/leads/{first}/stage", data={"stage": "offer"})  # no CSRF token
    assert response.status_code == 400
    ben = logged_in(app, BEN)
    refused = post(ben, f"/leads/{second}/stage", {"stage": "offer"}, page="/leads")
    assert refused.status_code == 404  # another salesperson's lead, even with a valid token
    assert lead_of(team, second).status == "assigned"

    listed = body(anna, "/leads?status=test_drive")
    assert f'/leads/{first}"' in listed and f'/leads/{second}"' not in listed
    assert '<td data-label="Status">Probefahrt</td>' in listed
    assert '<option value="test_drive" selected>Probefahrt</option>' in body(
        anna, "/leads?status=test_drive"
    )
    assert lead_of(team, first).test_drive_at is not None
