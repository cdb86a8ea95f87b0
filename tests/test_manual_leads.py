"""Leads typed in by hand and the duplicate check before them (seed 004), through the
service: distribution, escalation times, notification, protocol.  Both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import load_dealer_config
from mailgate.distribution.actions import ActionError
from mailgate.distribution.manual import (
    CustomerChoice,
    ManualLead,
    create_manual_lead,
    possible_duplicates,
)
from mailgate.escalation.ladder import NEVER
from mailgate.models import Customer, Lead, OutboxMail, ProtocolEntry, User

from .distribution_helpers import form_mail, ingest, setup, team_toml

ANNA, BEN = "anna@autohaus.example", "ben@autohaus.example"
NOW = datetime.now(UTC).replace(microsecond=0)
WALK_IN = ManualLead(
    customer={
        "salutation": "Herr",
        "first_name": "Karl",
        "last_name": "Kunde",
        "email": "Karl.Kunde@Kunden.example",
        "phone": "0170 1234567",
        "street": "Hauptstraße 1",
        "postcode": "80331",
        "city": "München",
        "birth_date": date(1980, 5, 17),
    },
    origin="Autoshow",
    origin_detail="Autoshow 2026",
    kind="test_drive",
    vehicle={"make": "VW", "model": "ID.4, ID.7", "price": 45000},
    current_vehicle={"make": "Opel", "model": "Astra", "mileage": 120000},
    usage="financing",
    interests=("test_drive", "brochure"),
    remark="Möchte am Samstag Probe fahren.",
)


@pytest.fixture(name="team")
def team_fixture(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    setup(factory, team_toml())
    return factory


def create(
    team: sessionmaker[Session], lead: ManualLead, choice: CustomerChoice, **kw: object
) -> int:
    with session_scope(team) as session:
        dealer = load_dealer_config(session)
        return create_manual_lead(session, dealer, lead, choice, actor=ANNA, now=NOW, **kw)  # type: ignore[arg-type]


def test_a_walk_in_runs_through_distribution_and_escalation(team: sessionmaker[Session]) -> None:
    lead_id = create(team, WALK_IN, CustomerChoice("new"))
    with team() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and lead.inbound_id is None
        assert (lead.source, lead.campaign, lead.kind, lead.parser) == (
            "Autoshow", "Autoshow 2026", "test_drive", "manual"
        )  # fmt: skip
        assert lead.vehicle == {"make": "VW", "model": "ID.4, ID.7", "price": 45000}
        assert lead.trade_in == {"make": "Opel", "model": "Astra", "mileage": 120000}
        assert lead.extras == {"usage": "financing", "interests": ["brochure", "test_drive"]}
        assert lead.message == "Möchte am Samstag Probe fahren."
        assert lead.status == "assigned" and lead.assignee is not None  # the rotation decided
        assert lead.overdue_at is not None and lead.overdue_at > NOW  # the escalation clock runs
        customer = session.get(Customer, lead.customer_id)
        assert customer is not None and customer.email == "karl.kunde@kunden.example"
        assert (customer.name, customer.birth_date) == ("Karl Kunde", date(1980, 5, 17))
        assert customer.phone_e164 == "+491701234567"  # matching keys set for later mails
        mails = {m.purpose for m in session.scalars(select(OutboxMail))}
        assert "notification" in mails and "acknowledgement" not in mails
        lines = [(p.action, p.detail) for p in lead.protocol]
    assert lines[0] == ("received", f"entered by hand by {ANNA} (origin Autoshow)")
    assert lines[1] == ("customer", f"new customer #{customer.id}")
    assert lines[2][0] == "assigned" and "rolling distribution" in lines[2][1]


def test_duplicates_are_found_and_the_users_choice_is_kept(team: sessionmaker[Session]) -> None:
    ingest(team, form_mail(1, name="Karl Kunde", email="karl.kunde@kunden.example"))
    with team() as session:
        (existing,) = session.scalars(select(Customer)).all()
        original = (existing.phone, existing.street, existing.city)
        found = possible_duplicates(session, WALK_IN.customer)
    assert [(d.customer["id"], d.how) for d in found] == [(existing.id, "e-mail")]

    kept = create(team, WALK_IN, CustomerChoice("keep", existing.id))
    with team() as session:
        lead = session.get(Lead, kept)
        customer = session.get(Customer, existing.id)
        assert lead is not None and customer is not None and lead.customer_id == existing.id
        assert (customer.phone, customer.street, customer.city) == original  # untouched
        assert lead.protocol[1].detail == f"existing customer #{existing.id}, data kept as it was"
        first_owner = lead.assignee_id

    updated = create(team, WALK_IN, CustomerChoice("update", existing.id, frozenset({"street"})))
    with team() as session:
        customer = session.get(Customer, existing.id)
        lead = session.get(Lead, updated)
        assert customer is not None and lead is not None
        assert customer.street == "Hauptstraße 1" and customer.phone == original[0]
        assert lead.protocol[1].detail.endswith("fields taken over: street")
        assert lead.assignee_id == first_owner  # a known customer's lead goes to his salesperson
        assert session.scalar(select(Customer.id).where(Customer.id != existing.id)) is None


def test_similar_names_at_the_same_postcode_are_offered_too(team: sessionmaker[Session]) -> None:
    create(team, WALK_IN, CustomerChoice("new"))
    other = {"first_name": "Carl", "last_name": "Kunde", "postcode": "80331"}
    with team() as session:
        found = possible_duplicates(session, other)
    assert [d.how for d in found] == ["similar name"]


def test_keep_it_myself_and_qualification(team: sessionmaker[Session]) -> None:
    hot = ManualLead(customer={"last_name": "Eilig"}, origin="Telefon", qualification="hot")
    lead_id = create(team, hot, CustomerChoice("new"), keep=True)
    junk = ManualLead(customer={"phone": "089 123456"}, origin="Telefon", qualification="junk")
    junk_id = create(team, junk, CustomerChoice("new"), keep=True)
    with team() as session:
        lead = session.get(Lead, lead_id)
        anna = session.scalar(select(User).where(User.email == ANNA))
        assert lead is not None and anna is not None and lead.assignee_id == anna.id
        assert lead.qualification == "hot" and lead.overdue_at is not None
        assert lead.overdue_at <= NOW + timedelta(days=4)  # two working days
        assert [p.action for p in lead.protocol][:3] == ["received", "customer", "assigned"]
        assert lead.protocol[2].detail == f"kept by {ANNA}, who entered it"
        junk_lead = session.get(Lead, junk_id)
        assert junk_lead is not None and junk_lead.escalation_stage == NEVER


@pytest.mark.parametrize(
    ("lead", "choice", "message"),
    [
        (ManualLead(customer={"last_name": "X"}, origin=" "), CustomerChoice("new"), "origin"),
        (ManualLead(customer={}, origin="Telefon"), CustomerChoice("new"), "needs a name"),
        (ManualLead(customer={"last_name": "X"}, origin="T"), CustomerChoice("merge"), "one of"),
        (ManualLead(customer={"last_name": "X"}, origin="T"), CustomerChoice("keep"), "needs"),
        (
            ManualLead(customer={"email": "kein"}, origin="Telefon"),
            CustomerChoice("new"),
            "not an e-mail",
        ),
        (
            ManualLead(customer={"last_name": "X"}, origin="T", interests=("yacht",)),
            CustomerChoice("new"),
            "unknown interests",
        ),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    team: sessionmaker[Session], lead: ManualLead, choice: CustomerChoice, message: str
) -> None:
    with pytest.raises(ActionError, match=message):
        create(team, lead, choice)
    with team() as session:
        assert session.scalar(select(Lead.id)) is None
        assert session.scalar(select(ProtocolEntry.id)) is None
