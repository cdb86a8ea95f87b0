"""The manual-lead duplicate step stays inside the user's scope (issue 16, item 4).

The attack: salesperson Ben types the phone number (or e-mail, or name and
address) of Anna's customer into "new lead", reads the customer's stored data
in the comparison, then posts the customer's id with "update the ticked
fields" and his own e-mail address; Anna's next reply to her customer would
then be relayed to Ben.  Now Ben learns only that such a customer exists and
who looks after him, any id he posts that he may not see is a 404 with
nothing written, and he can only hand the lead to Anna.  Team as in
:mod:`tests.test_webui_lead` (Anna and Ben under Chris Chef, Carl under Bea
Boss, Ada admin, a pool); both databases.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.escalation.replies import tracking_address
from mailgate.ingest.store import store_raw
from mailgate.models import Customer, Lead, OutboxMail, User
from mailgate.worker import process_pending

from .test_replies import reply
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    BEN,
    CARL,
    CHEF,
    POOL,
    app_fixture,
    team_fixture,
)
from .test_webui_lead_actions import flashes, prefilled
from .test_webui_manual_lead import FORM, submit
from .webui_helpers import ensure_user, logged_in, post

BOSS = "boss@autohaus.example"  # supervisor of Carl only
ATTACKER_MAIL = "ben.privat@attacker.example"
EXISTS = "Ein Kunde mit diesen Kontaktdaten existiert bereits (zugeordnet: Anna Schmidt)"
# What Ben types: Anna's customer's key in one field, the rest his own.
STRANGER = {
    **FORM,
    "first_name": "Bert",
    "last_name": "Fremd",
    "email": "bert.fremd@andere.example",
    "phone": "0160 9998877",
    "postcode": "10115",
    "street": "Andere Gasse 1",
    "birth_date": "",
}
PROBES = {
    "e-mail": {"email": FORM["email"]},
    "phone": {"phone": "+49 171 5550101"},  # the same number, written differently
    "name and address": {
        "first_name": FORM["first_name"],
        "last_name": FORM["last_name"],
        "postcode": FORM["postcode"],
        "street": FORM["street"],
    },
}
# Stored data of Anna's customer that must never reach Ben's page.
SECRETS = ("karla.kundin@kunden.example", "Neue Straße 5", "0171 5550101", "1985-03-02")


def annas_customer(team: sessionmaker[Session], app: Flask) -> int:
    """Anna serves Karla Kundin at the counter and keeps the lead: her customer."""
    response = submit(logged_in(app, ANNA), {**FORM, "keep": "y"})
    assert response.status_code == 302
    with team() as session:
        customer = session.scalar(select(Customer))
        assert customer is not None and customer.email == FORM["email"]
        lead = session.scalar(select(Lead).where(Lead.customer_id == customer.id))
        assert lead is not None and lead.assignee is not None and lead.assignee.email == ANNA
        return customer.id


def snapshot(team: sessionmaker[Session]) -> tuple[list[tuple[object, ...]], int]:
    """Every customer row and the number of leads: what must not change on a refusal."""
    with team() as session:
        table = Customer.__table__
        rows = [tuple(r) for r in session.execute(select(table).order_by(table.c.id))]
        return rows, session.scalar(select(func.count(Lead.id))) or 0


def page_of(client: FlaskClient, data: dict[str, object]) -> str:
    response = submit(client, data)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


@pytest.mark.parametrize("how", list(PROBES))
def test_a_colleagues_customer_is_named_without_any_of_his_data(
    team: sessionmaker[Session], app: Flask, how: str
) -> None:
    customer_id = annas_customer(team, app)
    before = snapshot(team)
    ben = logged_in(app, BEN)
    page = page_of(ben, {**STRANGER, **PROBES[how]})
    assert EXISTS in page
    for secret in SECRETS:
        if secret not in PROBES[how].values():  # what Ben typed himself rides along
            assert secret not in page, secret
    assert f"duplicate-{customer_id}" not in page
    assert 'name="duplicate_of"' not in page and 'name="take_over"' not in page
    assert f'value="{how}"' in page  # the hand-over names the match, not the customer
    assert snapshot(team) == before  # looking stores nothing


def test_the_scope_decides_who_sees_the_comparison(team: sessionmaker[Session], app: Flask) -> None:
    """Anna herself, her supervisor and the admin compare; Carl and another team's supervisor
    are told only that the customer exists."""
    customer_id = annas_customer(team, app)
    ensure_user(team, BOSS, "supervisor")
    probe = {**STRANGER, **PROBES["phone"]}
    for email in (ANNA, CHEF, ADA):
        page = page_of(logged_in(app, email), probe)
        assert f'id="duplicate-{customer_id}"' in page, email
        assert "karla.kundin@kunden.example" in page and EXISTS not in page, email
    for email in (BEN, CARL, BOSS):
        page = page_of(logged_in(app, email), probe)
        assert EXISTS in page and "karla.kundin@kunden.example" not in page, email


def test_a_similar_name_of_a_colleagues_customer_is_not_reported(
    team: sessionmaker[Session], app: Flask
) -> None:
    annas_customer(team, app)
    ben = logged_in(app, BEN)
    similar = {**STRANGER, "first_name": "Carla", "last_name": "Kundin", "postcode": "80331"}
    response = submit(ben, {**similar, "keep": "y"})
    assert response.status_code == 302  # no duplicate step at all: a new customer
    with team() as session:
        assert session.scalar(select(func.count(Customer.id))) == 2


ACTIONS = ({"choose_update": "y", "take_over": ["email", "street"]}, {"choose_keep": "y"})


@pytest.mark.parametrize("action", ACTIONS, ids=("update", "keep"))
def test_a_posted_foreign_customer_id_is_refused_and_nothing_is_written(
    team: sessionmaker[Session], app: Flask, action: dict[str, object]
) -> None:
    customer_id = annas_customer(team, app)
    ensure_user(team, BOSS, "supervisor")
    before = snapshot(team)
    hostile = {**STRANGER, **PROBES["phone"], "email": ATTACKER_MAIL, "keep": "y", **action}
    for email in (BEN, CARL, BOSS):
        client = logged_in(app, email)
        for posted in (str(customer_id), f" {customer_id} ", "999999", "2147483648", "9" * 40):
            response = submit(client, {**hostile, "duplicate_of": posted})
            assert response.status_code in (403, 404), (email, posted, response.status_code)
        for posted in ("", "-1", "\u0665", "1e3", "abc"):  # not an id at all: also refused
            response = submit(client, {**hostile, "duplicate_of": posted})
            assert response.status_code in (400, 403, 404), (email, posted, response.status_code)
    assert snapshot(team) == before


def test_the_attack_from_the_issue_fails_and_annas_reply_reaches_her_customer(
    team: sessionmaker[Session], app: Flask
) -> None:
    customer_id = annas_customer(team, app)
    ben = logged_in(app, BEN)
    # 1. Ben looks the customer up by her phone number: he learns nothing of her data.
    page = page_of(ben, {**STRANGER, "phone": "0171 5550101", "email": ATTACKER_MAIL})
    assert EXISTS in page and "karla.kundin@kunden.example" not in page
    # 2. He posts her id with "update the ticked fields" and his own address anyway.
    attack = {
        **STRANGER,
        "phone": "0171 5550101",
        "email": ATTACKER_MAIL,
        "duplicate_of": str(customer_id),
        "take_over": ["email", "phone", "street"],
        "choose_update": "y",
    }
    assert submit(ben, attack).status_code == 404
    with team() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.email == "karla.kundin@kunden.example"
    # 3. Anna answers her lead from her mail client: the answer goes to Karla, not to Ben.
    with team() as session:
        lead = session.scalar(select(Lead).where(Lead.customer_id == customer_id))
        assert lead is not None
        address = tracking_address("leads@autohaus.example", lead.id, lead.reply_token)
        lead_id = lead.id
    answer = reply(
        "Anna Schmidt <anna@autohaus.example>",
        address,
        f"AW: [Lead {lead_id}] Ihre Anfrage",
        "Guten Tag Frau Kundin,\n\nder Golf ist da, Probefahrt gern am Montag.\n\nAnna Schmidt\n",
    )
    store_raw(team, answer, channel="smtp", envelope_to=["leads@autohaus.example"])
    process_pending(team, Settings())
    with team() as session:
        relayed = session.scalars(
            select(OutboxMail).where(OutboxMail.purpose == "relay_to_customer")
        ).all()
    assert [m.recipients for m in relayed] == [["karla.kundin@kunden.example"]]
    assert all(ATTACKER_MAIL not in m.raw.decode("utf-8", "replace") for m in relayed)


def test_handing_over_links_the_lead_to_annas_customer_without_changing_it(
    team: sessionmaker[Session], app: Flask
) -> None:
    customer_id = annas_customer(team, app)
    before_rows, leads_before = snapshot(team)
    ben = logged_in(app, BEN)
    typed = {**STRANGER, "phone": "0171 5550101", "email": ATTACKER_MAIL, "keep": "y"}
    page = page_of(ben, typed)
    [how] = re.findall(r'name="hand_over" value="([^"]+)"', page)
    response = submit(ben, {**typed, "hand_over": how, "choose_hand_over": "y"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/leads")
    listing = ben.get("/leads").get_data(as_text=True)
    assert ("success", "Anfrage 2 angelegt und an Anna Schmidt übergeben.") in flashes(listing)
    rows, leads_after = snapshot(team)
    assert rows == before_rows and leads_after == leads_before + 1  # the customer as he was
    with team() as session:
        lead = session.scalar(select(Lead).order_by(Lead.id.desc()))
        assert lead is not None and lead.customer_id == customer_id
        assert lead.assignee is not None and lead.assignee.email == ANNA  # not kept by Ben
        assert lead.message is not None and ATTACKER_MAIL in lead.message  # for Anna to judge
        new_id = lead.id
    assert ben.get(f"/leads/{new_id}").status_code == 404


def test_a_hand_over_cannot_be_pointed_at_a_customer_the_typed_data_do_not_match(
    team: sessionmaker[Session], app: Flask
) -> None:
    """The server finds the customer again from the typed data: a forged match is asked again."""
    annas_customer(team, app)
    before = snapshot(team)
    ben = logged_in(app, BEN)
    for how in ("e-mail", "name and address", "similar name", "1", ""):
        forged = {**STRANGER, **PROBES["phone"], "hand_over": how, "choose_hand_over": "y"}
        page = page_of(ben, forged)
        assert "Ist das ein bestehender Kunde?" in page
    assert snapshot(team) == before


def test_own_and_pool_customers_are_still_compared_and_updated(
    team: sessionmaker[Session], app: Flask
) -> None:
    """The scope is the lead scope: a customer of a pool lead is everybody's to see."""
    customer_id = annas_customer(team, app)
    with team.begin() as session:  # Anna puts her lead back into the pool
        pool = session.scalar(select(User.id).where(User.email == POOL))
        his = update(Lead).where(Lead.customer_id == customer_id)
        session.execute(his.values(assignee_id=pool))
    ben = logged_in(app, BEN)
    page = page_of(ben, {**STRANGER, **PROBES["phone"]})
    assert f'id="duplicate-{customer_id}"' in page and EXISTS not in page
    changes = {
        **STRANGER,
        **PROBES["phone"],
        "duplicate_of": str(customer_id),
        "take_over": ["city"],
        "city": "München",
        "choose_update": "y",
    }
    assert submit(ben, changes).status_code == 302
    with team() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.city == "München"
        assert customer.email == "karla.kundin@kunden.example"


# --- a customer seen through one lead, with colleagues' leads too -----------------------------


def shared_customer(team: sessionmaker[Session], app: Flask, second_owner: str) -> tuple[int, int]:
    """Anna's customer gets a second lead, which goes to ``second_owner`` (or the pool)."""
    customer_id = annas_customer(team, app)
    again = {**FORM, "duplicate_of": str(customer_id), "choose_keep": "y", "keep": "y"}
    assert submit(logged_in(app, ANNA), again).status_code == 302
    with team.begin() as session:
        second = session.scalar(select(func.max(Lead.id)))
        owner = session.scalar(select(User.id).where(User.email == second_owner))
        session.execute(update(Lead).where(Lead.id == second).values(assignee_id=owner))
    assert second is not None
    return customer_id, second


def test_a_customer_seen_through_a_pool_lead_is_linked_but_not_changed(
    team: sessionmaker[Session], app: Flask
) -> None:
    customer_id, _ = shared_customer(team, app, POOL)
    ben = logged_in(app, BEN)
    probe = {**STRANGER, **PROBES["phone"], "email": ATTACKER_MAIL}
    page = page_of(ben, probe)
    assert f'id="duplicate-{customer_id}"' in page  # he may see him: the pool lead is his too
    assert 'name="take_over"' not in page and 'name="choose_update"' not in page
    assert "Kollegen betreuen diesen Kunden ebenfalls" in page
    before = snapshot(team)
    attack = {**probe, "duplicate_of": str(customer_id), "take_over": ["email"]}
    assert submit(ben, {**attack, "choose_update": "y"}).status_code == 403
    assert snapshot(team) == before
    linked = submit(ben, {**probe, "duplicate_of": str(customer_id), "choose_keep": "y"})
    assert linked.status_code == 302
    rows, _ = snapshot(team)
    assert rows == before[0]  # linked, the customer as he was


def test_editing_a_shared_customer_on_the_lead_page_needs_all_his_leads_in_sight(
    team: sessionmaker[Session], app: Flask
) -> None:
    """Ben has a lead of Anna's customer: he may correct the vehicle, not the customer's e-mail
    (where Anna's replies go); Chris Chef, who oversees both, and the admin may."""
    customer_id, bens = shared_customer(team, app, BEN)
    ben = logged_in(app, BEN)
    page = ben.get(f"/leads/{bens}/edit").get_data(as_text=True)
    assert 'id="customer-locked"' in page  # told before he types
    before = snapshot(team)
    for field, value in (("customer_email", ATTACKER_MAIL), ("customer_phone", "0160 1")):
        response = post(ben, f"/leads/{bens}/edit", prefilled(page) | {field: value})
        assert response.status_code == 403, field
        assert "Kollegen betreuen diesen Kunden ebenfalls" in response.get_data(as_text=True)
    assert snapshot(team) == before
    vehicle = post(ben, f"/leads/{bens}/edit", prefilled(page) | {"vehicle_model": "Polo"})
    assert vehicle.status_code == 302
    for email, city in ((CHEF, "Augsburg"), (ADA, "Ulm")):
        client = logged_in(app, email)
        page = client.get(f"/leads/{bens}/edit").get_data(as_text=True)
        assert 'id="customer-locked"' not in page, email
        form = prefilled(page)
        assert (
            post(client, f"/leads/{bens}/edit", form | {"customer_city": city}).status_code == 302
        )
        with team() as session:
            customer = session.get(Customer, customer_id)
            assert customer is not None and customer.city == city
            assert customer.email == "karla.kundin@kunden.example"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    posted=st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.text(max_size=30),
    ),
    action=st.sampled_from(ACTIONS),
)
def test_no_posted_customer_id_writes_for_a_stranger(
    team: sessionmaker[Session], app: Flask, posted: str, action: dict[str, object]
) -> None:
    """Whatever Ben posts as the customer id: refused or asked again, never a write, never
    a server error, never Anna's customer's data."""
    global _BEN  # one login per database: Argon2 is slow by design
    if _BEN is None or _BEN[0] is not app:
        annas_customer(team, app)
        _BEN = (app, logged_in(app, BEN))
    ben = _BEN[1]
    before = snapshot(team)
    hostile = {**STRANGER, **PROBES["phone"], "email": ATTACKER_MAIL, **action}
    response = submit(ben, {**hostile, "duplicate_of": posted})
    assert response.status_code in (400, 403, 404), (posted, response.status_code)
    assert "karla.kundin@kunden.example" not in response.get_data(as_text=True)
    assert snapshot(team) == before


_BEN: tuple[Flask, FlaskClient] | None = None
