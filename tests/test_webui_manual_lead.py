"""Entering a lead by hand in the web UI, with the duplicate check (seed 004).  Both databases."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import Customer, Lead

from .distribution_helpers import form_mail, ingest
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ANNA,
    CARL,
    app_fixture,
    body,
    team_fixture,
)
from .test_webui_lead_actions import flashes
from .webui_helpers import csrf_token, logged_in

FORM = {
    "salutation": "Frau",
    "first_name": "Karla",
    "last_name": "Kundin",
    "email": "karla.kundin@kunden.example",
    "phone": "0171 5550101",
    "postcode": "80331",
    "street": "Neue Straße 5",
    "birth_date": "1985-03-02",
    "current_make": "Opel",
    "current_model": "Corsa",
    "current_mileage": "98.000 km",
    "usage": "financing",
    "make": "VW",
    "model": "Golf, Polo",
    "price": "24.990 €",
    "interests": ["test_drive", "brochure"],
    "remark": "Kam mit ihrem Mann vorbei.",
    "kind": "test_drive",
    "qualification": "warm",
    "origin": "Walk-in",
    "origin_detail": "Herbstausstellung 2026",
}


def submit(client, data: dict[str, object]):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/leads/new")
    return client.post("/leads/new", data={**data, "csrf_token": token})


def test_a_new_customer_becomes_a_lead_at_once(team: sessionmaker[Session], app: Flask) -> None:
    anna = logged_in(app, ANNA)
    assert "Neue Anfrage" in body(anna, "/leads/new")
    response = submit(anna, {**FORM, "keep": "y"})
    assert response.status_code == 302
    page = body(anna, response.headers["Location"])
    assert flashes(page)[0][0] == "success"
    with team() as session:
        lead = session.scalar(select(Lead))
        assert lead is not None and lead.assignee is not None
        assert lead.assignee.email == ANNA  # she keeps the walk-in she served
        assert (lead.source, lead.campaign, lead.qualification) == (
            "Walk-in",
            "Herbstausstellung 2026",
            "warm",
        )
        assert lead.vehicle == {"make": "VW", "model": "Golf, Polo", "price": 24990}
        assert lead.trade_in == {"make": "Opel", "model": "Corsa", "mileage": 98000}
        assert lead.extras == {"usage": "financing", "interests": ["brochure", "test_drive"]}
    assert "von Hand erfasst von anna@autohaus.example (Herkunft Laufkundschaft)" in page


def test_a_known_customer_asks_first_then_updates_the_ticked_fields(
    team: sessionmaker[Session], app: Flask
) -> None:
    ingest(team, form_mail(1, name="Karla Kundin", email="karla.kundin@kunden.example"))
    with team() as session:
        known = session.scalar(select(Customer))
        assert known is not None
        old_phone = known.phone
    anna = logged_in(app, ANNA)
    page = submit(anna, FORM).get_data(as_text=True)
    assert "Ist das ein bestehender Kunde?" in page
    assert (
        f'<form method="post" action="/leads/new" class="duplicate" id="duplicate-{known.id}">'
        in page
    )
    assert "gefunden über: E-Mail-Adresse" in page
    with team() as session:
        assert session.scalar(select(func.count(Lead.id))) == 1  # nothing stored yet
    ticked = re.findall(r'name="take_over" value="(\w+)"', page)
    assert "street" in ticked and "phone" in ticked
    # the typed data rides along as hidden fields; tick only the street
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))
    assert hidden["origin"] == "Walk-in" and hidden["birth_date"] == "1985-03-02"
    response = submit(
        anna,
        {
            **FORM,
            "duplicate_of": str(known.id),
            "take_over": ["street"],
            "choose_update": "y",
        },
    )
    assert response.status_code == 302
    with team() as session:
        customer = session.get(Customer, known.id)
        assert customer is not None
        assert customer.street == "Neue Straße 5" and customer.phone == old_phone
        assert session.scalar(select(func.count(Customer.id))) == 1
        newest = session.scalar(select(Lead).order_by(Lead.id.desc()))
        assert newest is not None and newest.customer_id == known.id
        details = [p.detail for p in newest.protocol]
    assert f"existing customer #{known.id}, fields taken over: street" in details


def test_choosing_a_new_customer_keeps_the_known_one_apart(
    team: sessionmaker[Session], app: Flask
) -> None:
    ingest(team, form_mail(1, name="Karla Kundin", email="karla.kundin@kunden.example"))
    anna = logged_in(app, ANNA)
    response = submit(anna, {**FORM, "duplicate_of": "1", "choose_new": "y"})
    assert response.status_code == 302
    with team() as session:
        assert session.scalar(select(func.count(Customer.id))) == 2


def test_bad_input_is_shown_and_nothing_is_stored(team: sessionmaker[Session], app: Flask) -> None:
    carl = logged_in(app, CARL)
    missing_origin = submit(carl, {**FORM, "origin": ""})
    assert missing_origin.status_code == 400
    bad_mail = submit(carl, {**FORM, "email": "kein-at", "keep": "y"})
    assert bad_mail.status_code == 400
    assert "Nicht gespeichert" in bad_mail.get_data(as_text=True)
    no_token = carl.post("/leads/new", data=FORM)
    assert no_token.status_code == 400
    assert app.test_client().get("/leads/new").status_code == 302  # login first
    with team() as session:
        assert session.scalar(select(func.count(Lead.id))) == 0
