"""A lead the OEM takes away to its call centre (seed 000 §4/5): the notice is matched by the
OEM's lead number, the lead stops escalating and becomes read-only everywhere.  Both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import load_dealer_config
from mailgate.distribution.actions import ActionError as DistributionError
from mailgate.distribution.actions import reassign
from mailgate.distribution.edits import edit_lead
from mailgate.escalation.actions import ActionError, close_lead, log_contact, set_stage
from mailgate.escalation.ladder import NEVER
from mailgate.models import InboundMail
from mailgate.parsers import ParseContext, parse_view
from mailgate.parsers.message import load

from .distribution_helpers import ingest, leads, setup, team_toml
from .webui_helpers import ensure_user, logged_in, web_app

OPEL = Path(__file__).parent / "fixtures" / "mails" / "oem_opel"
LEAD_MAIL = (OPEL / "leadit-angebot-utf8-qp.eml").read_bytes()
NOTICE = (OPEL / "leadit-call-center-takeover.eml").read_bytes()
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(name="team")
def team_fixture(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    setup(factory, team_toml())
    return factory


def test_the_notice_is_recognised_with_the_oems_lead_number() -> None:
    notice = parse_view(load(NOTICE), ParseContext())
    assert (notice.parser, notice.handed_over, notice.source_ref) == ("oem_opel", True, "2718281")
    lead = parse_view(load(LEAD_MAIL), ParseContext())
    assert (lead.handed_over, lead.source_ref, lead.is_lead) == (False, "2718281", True)


def test_the_call_centre_takes_the_lead_and_it_becomes_read_only(
    team: sessionmaker[Session],
) -> None:
    ingest(team, LEAD_MAIL)
    (lead,) = leads(team)
    assert lead.source_ref == "2718281" and lead.next_due_at is not None
    ingest(team, NOTICE)  # processed, no second lead
    ingest(team, NOTICE.replace(b"<opel-cc-", b"<again-opel-cc-"))  # a second copy: once only
    (lead,) = leads(team)
    assert lead.handed_over_at is not None
    assert (lead.escalation_stage, lead.next_due_at) == (NEVER, None)  # no more reminders
    handed = [p.detail for p in lead.protocol if p.action == "handed_over"]
    assert handed == ["taken over by the call centre of oem:opel (their lead 2718281)"]
    with team() as session:
        notice = session.scalar(select(InboundMail).order_by(InboundMail.id.desc()))
        assert notice is not None and notice.lead_id == lead.id
    with session_scope(team) as session:
        dealer = load_dealer_config(session)
        for act in (
            lambda: set_stage(session, lead.id, "anna@autohaus.example", NOW, "offer"),
            lambda: close_lead(session, lead.id, "anna@autohaus.example", NOW, "sold"),
            lambda: log_contact(session, lead.id, "anna@autohaus.example", NOW),
        ):
            with pytest.raises(ActionError, match="taken over by the source's call centre"):
                act()
        with pytest.raises(DistributionError, match="call centre"):
            reassign(
                session, dealer, [lead.id], "ben@autohaus.example", actor="chef@autohaus.example"
            )
        with pytest.raises(DistributionError, match="call centre"):
            edit_lead(session, lead.id, "anna@autohaus.example", NOW, customer={"city": "Kiel"})


def test_a_notice_for_an_unknown_lead_is_kept_for_a_human(team: sessionmaker[Session]) -> None:
    ingest(team, NOTICE, expect="quarantined")
    with team() as session:
        notice = session.scalar(select(InboundMail))
        assert notice is not None
        assert notice.status_reason == "call-centre notice for unknown lead 2718281"
    assert leads(team) == []


def test_the_lead_page_shows_the_banner_and_no_actions(team: sessionmaker[Session]) -> None:
    ensure_user(team, "ada@autohaus.example", "admin")
    ensure_user(team, "chef@autohaus.example", "supervisor")
    ingest(team, LEAD_MAIL, NOTICE)
    (lead,) = leads(team)
    page = logged_in(web_app(team), "chef@autohaus.example").get(f"/leads/{lead.id}")
    html = page.get_data(as_text=True)
    assert 'id="handed-over"' in html and "Bitte den Kunden nicht kontaktieren" in html
    assert 'id="form-contact"' not in html and 'id="form-close"' not in html
    assert "vom Call Center von Hersteller: Opel übernommen (dortiger Lead 2718281)" in html
