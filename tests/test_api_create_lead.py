"""POST /api/v1/leads (issue 20 item 15): a lead from another system, with the rules of the
CSV import — distributed like a manual lead, created once per external_id, the duplicate
decision for known customers, every bad field a 400/422 that creates nothing.  Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings
from mailgate.models import Customer, Lead, ProtocolEntry
from mailgate.webhooks import emit as emit_module

from .test_api import BEN_TOML, bearer, make_token
from .test_escalation import ESCALATING_DEALER
from .webui_helpers import web_app

URL = "/api/v1/leads"
LEAD: dict[str, Any] = {
    "customer": {
        "first_name": "Karla",
        "last_name": "Kundin",
        "email": "karla.kundin@kunden.example",
        "phone": "0171 5550101",
    },
    "vehicle": {"make": "Škoda", "model": "Octavia Combi", "price": "28.490 €"},
    "kind": "test_drive",
    "origin": "Website-Chat",
    "campaign": "Herbstaktion",
    "message": "Probefahrt am Samstag möglich?",
    "external_id": "chat-4711",
}


@pytest.fixture
def api(dealer: sessionmaker[Session]) -> Iterator[FlaskClient]:
    """The team of the API tests (test_api.py), and a test client."""
    emit_module.forget_webhooks()
    with db.session_scope(dealer) as session:
        import_settings(session, ESCALATING_DEALER + BEN_TOML)
    yield web_app(dealer).test_client()
    emit_module.forget_webhooks()


def count(factory: sessionmaker[Session], model: type = Lead) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_lead_is_created_once_per_external_id(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    token = make_token(dealer, "chat", ["read", "write"])
    first = api.post(URL, json=LEAD, headers=bearer(token))
    assert first.status_code == 201, first.json
    document = first.json
    assert document["source"] == "Website-Chat" and document["kind"] == "test_drive"
    assert document["assignee"] is not None  # distributed like any lead
    again = api.post(URL, json=LEAD, headers=bearer(token))  # a retry after a lost answer
    assert again.status_code == 200 and again.json["id"] == document["id"]
    assert count(dealer) == 1
    with dealer() as session:
        lead = session.get(Lead, document["id"])
        assert (
            lead is not None and lead.source_ref == "chat-4711" and lead.campaign == "Herbstaktion"
        )
        assert lead.vehicle["model"] == "Octavia Combi" and lead.vehicle["price"] == 28490
        line = session.scalar(select(ProtocolEntry.detail).where(ProtocolEntry.lead_id == lead.id))
        assert line is not None and "imported by api:chat" in line
    without_id = {k: v for k, v in LEAD.items() if k != "external_id"}
    assert api.post(URL, json=without_id, headers=bearer(token)).status_code == 201
    assert count(dealer) == 2  # no id: every post is a lead (the same customer, kept)
    assert count(dealer, Customer) == 1


def test_the_duplicate_decision_for_a_known_customer(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    token = make_token(dealer, "chat", ["write"])
    with dealer() as session:
        session.add(Customer(name="K. Kundin", email="karla.kundin@kunden.example", phone="089 1"))
        session.commit()
    body = {**LEAD, "external_id": "a", "duplicates": "update"}
    assert api.post(URL, json=body, headers=bearer(token)).status_code == 201
    with dealer() as session:
        (karla,) = session.scalars(select(Customer)).all()
        assert karla.phone == "0171 5550101" and karla.first_name == "Karla"
    body = {**LEAD, "external_id": "b", "duplicates": "new"}
    assert api.post(URL, json=body, headers=bearer(token)).status_code == 201
    assert count(dealer, Customer) == 2


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"customer": {"email": "kein-at"}}, 422, "not an e-mail address"),
        ({"customer": {}}, 422, "needs an e-mail address, a phone number or a name"),
        ({"customer": {"last_name": "X", "birth_date": "31.02.1990"}}, 422, "not a date"),
        ({"kind": "kaffee"}, 422, "unknown kind"),
        ({"origin": "  "}, 400, "origin must be 1 to 64"),
        ({"origin": "x" * 65}, 400, "origin must be 1 to 64"),
        ({"customer": {"email": 5}}, 400, "customer.email must be a string"),
        ({"customer": {"password": "x"}}, 400, "unknown field customer.password"),
        ({"customer": {"last_name": "x" * 256}}, 400, "at most 255"),
        ({"vehicle": {"vin": "WVW"}}, 400, "unknown field vehicle.vin"),
        ({"customer": "Karla"}, 400, "customer must be a dict"),
        ({"duplicates": "merge"}, 400, "duplicates must be one of"),
        ({"assignee_id": 1}, 400, "unknown fields: assignee_id"),
        ({"message": "x" * 4001}, 400, "message must be at most 4000"),
    ],
)
def test_bad_fields_are_refused_and_create_nothing(  # type: ignore[no-untyped-def]
    api: FlaskClient, dealer, change: dict[str, Any], status: int, words: str
) -> None:
    token = make_token(dealer, "chat", ["write"])
    response = api.post(URL, json={**LEAD, **change}, headers=bearer(token))
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json" and words in response.json["detail"]
    assert count(dealer) == 0 and count(dealer, Customer) == 0


def test_only_a_write_token_creates_leads(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    reader = make_token(dealer, "dms", ["read"])
    assert api.post(URL, json=LEAD, headers=bearer(reader)).status_code == 403
    assert api.post(URL, json=LEAD).status_code == 401
    writer = make_token(dealer, "chat", ["write"])
    assert api.post(URL + "?assignee=ben", json=LEAD, headers=bearer(writer)).status_code == 400
    assert count(dealer) == 0
