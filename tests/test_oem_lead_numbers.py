"""Issue 20 #6: a second OEM lead of a known customer is its own lead (seed 003).

Seed 003 (Nissan leads): "In beiden Fällen wird eine Rückmeldung an Nissan mit dem
aktuellen Bearbeitungsstatus übermittelt" - every OEM lead gets its own status
feedback.  A mail that carries its own source lead number is therefore never
swallowed as a follow-up mail of the customer's open lead: it becomes a lead of
its own, linked to the open one and given to the same salesperson.  Both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.escalation.actions import set_stage
from mailgate.models import Lead, LeadFollowup, User

from .distribution_helpers import form_mail, ingest, leads, setup, team_toml
from .test_source_feedback import FEEDBACK, OPEL_LEAD, feedback_mails

NOW = datetime.now(UTC)


def second_oem_lead(number: bytes, message_id: bytes = b"opel2") -> bytes:
    """The same customer's next Opel lead, with the OEM's number ``number``."""
    return OPEL_LEAD.replace(b"2718281", number).replace(b"opel1@", message_id + b"@")


@pytest.fixture(name="team")
def team_fixture(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    setup(factory, team_toml(extra=FEEDBACK))
    return factory


def _give_to(factory: sessionmaker[Session], lead_id: int, email: str) -> None:
    with session_scope(factory) as session:
        user_id = session.scalar(select(User.id).where(User.email == email))
        session.execute(update(Lead).where(Lead.id == lead_id).values(assignee_id=user_id))


def test_a_second_oem_lead_is_its_own_lead_linked_to_the_open_one(
    team: sessionmaker[Session],
) -> None:
    """Seed 003: every OEM lead gets status feedback, so the second one is a lead with its
    own number, linked to the open lead and given to the same salesperson; nothing is
    attached as a follow-up mail."""
    ingest(team, OPEL_LEAD)
    (first,) = leads(team)
    _give_to(team, first.id, "carl@autohaus.example")  # not whom the rotation would pick
    ingest(team, second_oem_lead(b"2718282"))
    first, second = leads(team)
    assert (second.source_ref, second.linked_lead_id) == ("2718282", first.id)
    assert second.customer_id == first.customer_id
    assert second.assignee is not None and second.assignee.email == "carl@autohaus.example"
    assert second.next_due_at is not None  # its own clock
    with team() as session:
        assert session.scalars(select(LeadFollowup)).all() == []
    assert [p.action for p in first.protocol][-1] == "linked_lead"
    assert "linked_lead" in [p.action for p in second.protocol]


def test_the_second_oem_lead_gets_its_own_status_feedback(team: sessionmaker[Session]) -> None:
    """Seed 003: "eine Rückmeldung an Nissan mit dem aktuellen Bearbeitungsstatus" - for each
    lead under its own number."""
    ingest(team, OPEL_LEAD, second_oem_lead(b"2718282"))
    first, second = leads(team)
    with session_scope(team) as session:
        set_stage(session, second.id, "anna@autohaus.example", NOW, "contacted")
        set_stage(session, first.id, "anna@autohaus.example", NOW, "offer")
    subjects = [subject for _, subject, _ in feedback_mails(team)]
    assert "Statusmeldung zu Lead 2718282: kontaktiert" in subjects
    assert any(s.startswith("Statusmeldung zu Lead 2718281") for s in subjects)


def test_a_mail_naming_the_open_leads_number_is_about_that_lead(
    team: sessionmaker[Session],
) -> None:
    """The OEM's number identifies its lead: a further mail with the number of an open lead
    is attached to that lead (not a third lead), even when the customer has two."""
    ingest(team, OPEL_LEAD, second_oem_lead(b"2718282"))
    question = b"Gibt es auch eine Finanzierung?"  # a new mail, not a copy of the first
    ingest(team, second_oem_lead(b"2718281", b"opel3").replace(b"Bitte ein Angebot", question))
    ingest(team, second_oem_lead(b"2718282", b"opel4").replace(b"Bitte ein Angebot", question))
    first, second = leads(team)
    with team() as session:
        attached = sorted(session.scalars(select(LeadFollowup.lead_id)).all())
    assert attached == [first.id, second.id]


def test_a_mail_without_a_source_number_still_attaches_as_before(
    team: sessionmaker[Session],
) -> None:
    """Only a source lead number makes a lead of its own: a plain follow-up mail of the
    customer is attached to his open lead as before."""
    ingest(team, form_mail(1))
    again = form_mail(1, message="Und in Blau?").replace(b"Message-ID: <", b"Message-ID: <again-")
    ingest(team, again)
    assert len(leads(team)) == 1
    with team() as session:
        assert len(session.scalars(select(LeadFollowup)).all()) == 1
