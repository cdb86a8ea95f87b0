"""The salesperson's first look at a lead (seed 000): a protocol line and "opened" feedback."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import Lead

from .distribution_helpers import ingest, leads, protocol, setup, team_toml
from .test_source_feedback import CHANNEL_WITH_DATA, OPEL_LEAD, feedback_mails
from .webui_helpers import ensure_user, logged_in, web_app


def test_the_salespersons_first_look_reports_opened_once(factory: sessionmaker[Session]) -> None:
    """Seed 000: "the status that the customer has opened will only be submitted … if the
    seller clicks on … the task": the assignee's first look, not a supervisor's."""
    setup(factory, team_toml(extra=CHANNEL_WITH_DATA))
    ingest(factory, OPEL_LEAD)
    (lead,) = leads(factory)
    with factory() as session:
        owner = session.get(Lead, lead.id).assignee  # type: ignore[union-attr]
        assert owner is not None
        owner_email = owner.email
    ensure_user(factory, owner_email, "salesperson")
    ensure_user(factory, "chefin@autohaus.example", "admin", name="Chefin")
    app = web_app(factory)
    admin = logged_in(app, "chefin@autohaus.example")
    assert admin.get(f"/leads/{lead.id}").status_code == 200
    assert feedback_mails(factory) == []  # an admin browsing has not started work
    salesperson = logged_in(app, owner_email)
    for _ in range(3):
        assert salesperson.get(f"/leads/{lead.id}").status_code == 200
    (opened,) = feedback_mails(factory)
    assert opened[1] == "Statusmeldung zu Lead 2718281: geöffnet – in Bearbeitung"
    assert "Neuer Status: geöffnet – in Bearbeitung" in opened[2]
    assert "Händlernummer: DE0621.00" in opened[2]
    lines = [action for action, _ in protocol(factory, lead.id)]
    assert lines.count("opened") == 1
    with factory() as session:
        assert session.get(Lead, lead.id).status == "assigned"  # type: ignore[union-attr]
