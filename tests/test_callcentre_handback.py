"""Issue 20 #8: a call-centre takeover is not forever (seed 000 §4/5).

Seed 000 §5 (LeadIT - CC leads): "Further processing is only possible after the
reassignment of a call center."  An admin hands a taken-over lead back - to the
salesperson who had it or to the distribution - and the lead list filters by
call-centre state.  Both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import load_dealer_config
from mailgate.distribution.actions import ActionError
from mailgate.distribution.handback import hand_back
from mailgate.escalation.actions import log_contact
from mailgate.models import Lead, OutboxMail, User

from .distribution_helpers import ingest, leads, setup, team_toml
from .test_source_handover import LEAD_MAIL, NOTICE
from .test_webui_lead_actions import flashes
from .webui_helpers import ensure_user, logged_in, post, web_app

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
ADA, ANNA = "ada@autohaus.example", "anna@autohaus.example"


@pytest.fixture(name="team")
def team_fixture(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    setup(factory, team_toml())
    ingest(factory, LEAD_MAIL, NOTICE)
    return factory


def _taken(factory: sessionmaker[Session]) -> Lead:
    (lead,) = leads(factory)
    assert lead.handed_over_at is not None
    return lead


def _hand_back(factory: sessionmaker[Session], lead_id: int, to: str) -> str:
    with session_scope(factory) as session:
        return hand_back(session, load_dealer_config(session), lead_id, ADA, NOW, to=to).email


def test_an_admin_hands_the_lead_back_to_its_salesperson(team: sessionmaker[Session]) -> None:
    """Seed 000 §5: processing goes on after the call centre's reassignment - writable again,
    stage 1 afresh from the hand-back (the call centre's time is not the salesperson's),
    the salesperson told by mail, the protocol and the list's filter remember it."""
    lead = _taken(team)
    owner = lead.assignee.email if lead.assignee else None
    assert owner is not None
    assert _hand_back(team, lead.id, "owner") == owner
    (lead,) = leads(team)
    assert lead.handed_over_at is None and lead.handed_back_at == NOW
    assert lead.assignee is not None and lead.assignee.email == owner
    assert lead.escalation_stage == 0 and lead.overdue_at is not None and lead.overdue_at > NOW
    assert [p.action for p in lead.protocol][-2:] == ["handed_back", "notified"]
    with team() as session:
        notices = session.scalars(
            select(OutboxMail.recipients).where(OutboxMail.purpose == "reassigned")
        ).all()
        assert [list(r) for r in notices] == [[owner]]
    with session_scope(team) as session:  # the salesperson may work it again
        log_contact(session, lead.id, owner, NOW + timedelta(hours=1))


def test_hand_back_to_the_distribution(team: sessionmaker[Session]) -> None:
    """The other way back: whoever the configured distribution picks now gets it."""
    lead = _taken(team)
    new_owner = _hand_back(team, lead.id, "distribution")
    (lead,) = leads(team)
    assert lead.assignee is not None and lead.assignee.email == new_owner
    assert lead.handed_over_at is None and lead.next_due_at is not None


def test_refusals(team: sessionmaker[Session]) -> None:
    """Only a taken-over open lead goes back; a gone owner sends it to the distribution."""
    lead = _taken(team)
    with pytest.raises(ActionError, match="hand back to one of"):
        _hand_back(team, lead.id, "ceo")
    with session_scope(team) as session:
        session.execute(update(User).where(User.id == lead.assignee_id).values(active=False))
    with pytest.raises(ActionError, match="no previous owner"):
        _hand_back(team, lead.id, "owner")
    _hand_back(team, lead.id, "distribution")
    with pytest.raises(ActionError, match="not with the call centre"):
        _hand_back(team, lead.id, "distribution")


def test_the_lead_page_and_list_for_admins_only(team: sessionmaker[Session]) -> None:
    """An admin sees the hand-back form and the list filters by call-centre state; a
    salesperson cannot post it (403); a hostile target gets a German error, nothing moves."""
    ensure_user(team, ADA, "admin")
    ensure_user(team, ANNA, "salesperson")
    lead = _taken(team)
    app = web_app(team)
    ada = logged_in(app, ADA)
    page = ada.get(f"/leads/{lead.id}").get_data(as_text=True)
    assert 'id="form-hand-back"' in page and "an die Verteilung" in page
    taken = ada.get("/leads?callcentre=taken").get_data(as_text=True)
    assert f'href="/leads/{lead.id}"' in taken
    assert f'href="/leads/{lead.id}"' not in ada.get("/leads?callcentre=returned").get_data(
        as_text=True
    )
    anna = logged_in(app, ANNA)
    refused = post(anna, f"/leads/{lead.id}/hand-back", {"to": "owner"}, page="/leads")
    assert refused.status_code == 403
    hostile = post(ada, f"/leads/{lead.id}/hand-back", {"to": "';--"}, page=f"/leads/{lead.id}")
    assert hostile.status_code == 302
    shown = ada.get(hostile.headers["Location"]).get_data(as_text=True)
    assert [kind for kind, _ in flashes(shown)] == ["error"]
    assert _taken(team).handed_over_at is not None
    done = post(ada, f"/leads/{lead.id}/hand-back", {"to": "owner"}, page=f"/leads/{lead.id}")
    shown = ada.get(done.headers["Location"]).get_data(as_text=True)
    assert (
        "success",
        "Vom Callcenter zurückgeholt: Die Anfrage kann wieder bearbeitet werden.",
    ) in (flashes(shown))
    assert 'id="handed-back"' in shown
    returned = ada.get("/leads?callcentre=returned").get_data(as_text=True)
    assert f'href="/leads/{lead.id}"' in returned
