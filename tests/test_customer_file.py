"""The customer file (issue 20, item 9): list and search, a customer's page, moving a lead to
another customer, and the "please check" task of a mailed lead whose customer only resembles
a known one.  Every page and action for every role, foreign ids, CSRF, hostile search input.
Both databases.

Team as in :mod:`tests.test_webui_lead`: Anna and Ben sell under Chris Chef, Carl under
another supervisor, Ada is the admin; the pool account exists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import Customer, Lead, LeadFollowup, OutboxMail, ProtocolEntry, User

from .distribution_helpers import ingest
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    BEN,
    CARL,
    CHEF,
    app_fixture,
    team_fixture,
)
from .webui_helpers import csrf_token, logged_in, post

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
_counter = iter(range(1, 10_000))


def user_id(factory: sessionmaker[Session], email: str) -> int:
    with factory() as session:
        found = session.scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


def customer(factory: sessionmaker[Session], **values: Any) -> int:
    with factory.begin() as session:
        row = Customer(created_at=NOW, **values)
        session.add(row)
        session.flush()
        return row.id


def lead(
    factory: sessionmaker[Session],
    customer_id: int | None,
    owner: str | None,
    vehicle: dict[str, Any] | None = None,
    **values: Any,
) -> int:
    n = next(_counter)
    with factory.begin() as session:
        assignee = session.scalar(select(User.id).where(User.email == owner)) if owner else None
        row = Lead(
            dedupe_key=f"cf-{n}",
            reply_token=f"cf-token-{n}",
            customer_id=customer_id,
            assignee_id=assignee,
            status="assigned",
            source=values.pop("source", "mobile.de"),
            vehicle=vehicle or {},
            received_at=NOW - timedelta(hours=n),
            **values,
        )
        session.add(row)
        session.flush()
        return row.id


def page(client: Any, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


# --- list, search, paging ---------------------------------------------------------------


def test_a_salesperson_finds_his_customers_by_every_key_and_never_a_colleagues(
    team: sessionmaker[Session], app: Flask
) -> None:
    mine = customer(
        team,
        name="Fritz Fröhlich",
        email="fritz@kunden.example",
        phone="0170 1234567",
        phone_e164="+491701234567",
        postcode="80331",
        city="München",
        match_name="froehlich fritz",
    )
    lead(team, mine, ANNA, {"make": "Opel", "model": "Astra", "listing_id": "412345678"})
    theirs = customer(
        team,
        name="Fritz Fremd",
        email="fremd@kunden.example",
        phone="0171 7654321",
        phone_e164="+491717654321",
        postcode="80331",
    )
    lead(team, theirs, CARL, {"listing_id": "498765432"})
    anna = logged_in(app, ANNA)
    for query in (
        "Fröhlich",
        "froehlich",
        "FRITZ@kunden.example",
        "0170 1234567",
        "+49 170 1234567",
        "0170/123 45 67",
        "80331",
        "412345678",  # a 9-digit mobile.de listing id of his lead
    ):
        found = page(anna, f"/customers?q={query}")
        assert "Fritz Fröhlich" in found, query
        assert "Fritz Fremd" not in found and "fremd@kunden" not in found, query
    assert "Fritz Fremd" not in page(anna, "/customers?q=498765432")
    assert "Fritz Fremd" not in page(anna, "/customers?q=0171 7654321")
    ada = logged_in(app, ADA)
    everything = page(ada, "/customers")
    assert "Fritz Fröhlich" in everything and "Fritz Fremd" in everything
    assert "Fritz Fremd" in page(ada, "/customers?q=498765432")


def test_the_list_pages_fifty_at_a_time(team: sessionmaker[Session], app: Flask) -> None:
    for n in range(55):
        lead(team, customer(team, name=f"Kunde {n:03d}"), ANNA)
    anna = logged_in(app, ANNA)
    first = page(anna, "/customers")
    assert "Kunde 000" in first and "Kunde 049" in first and "Kunde 050" not in first
    assert "Seite 1 von 2" in first
    second = page(anna, "/customers?page=2")
    assert "Kunde 054" in second and "Kunde 000" not in second
    assert "Kunde 054" in page(anna, "/customers?page=99999999999999999999")  # clamped


@pytest.mark.parametrize(
    "query",
    [
        "%",
        "_",
        "\\",
        "%%%%",
        "a_c",
        "'; DROP TABLE customer; --",
        "x" * 10_000,
        "Fr%C3%B6h",
        "%00",
        "\u0000abc",
        "((((",
        "+",
        "0" * 40,
    ],
)
def test_hostile_search_input_is_taken_literally(
    team: sessionmaker[Session], app: Flask, query: str
) -> None:
    lead(team, customer(team, name="Anna Wildcard", email="a@kunden.example"), ANNA)
    lead(team, customer(team, name="abc", email="b@kunden.example"), ANNA)
    anna = logged_in(app, ANNA)
    response = anna.get("/customers", query_string={"q": query})
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    if "\x00" in query:  # refused app-wide, with a German reason
        assert response.status_code == 400 and "NUL-Zeichen" in text
        return
    assert response.status_code == 200, query
    if query in ("%", "_", "\\", "%%%%", "a_c", "((((", "+"):
        # a wildcard matches itself only: no customer has it in name, e-mail or phone
        assert "Anna Wildcard" not in text, query
    with team() as session:
        assert session.scalar(select(Customer.id).limit(1)) is not None  # nothing dropped


# --- a customer's page ---------------------------------------------------------------------


def test_the_customer_page_shows_leads_messages_vehicles_and_salesperson(
    team: sessionmaker[Session], app: Flask
) -> None:
    cid = customer(team, name="Greta Groß", email="greta@kunden.example", phone="089 123456")
    first = lead(
        team,
        cid,
        ANNA,
        {"make": "Opel", "model": "Corsa", "listing_id": "412345678"},
        subject="Anfrage Corsa",
        message="Ist der Corsa noch da?",
    )
    second = lead(team, cid, ANNA, {"make": "Opel", "model": "Mokka"}, kind="test_drive")
    hidden = lead(team, cid, CARL, {"make": "Opel", "model": "Grandland"})
    with team.begin() as session:
        session.add(
            LeadFollowup(
                lead_id=second,
                dedupe_key="cf-followup",
                received_at=NOW,
                subject="Nachtrag",
                message="Bitte rufen Sie mich an",
            )
        )
        session.add(
            OutboxMail(
                idempotency_key="cf-answer",
                purpose="answer_from_lead_page",
                lead_id=first,
                mail_from="anna@autohaus.example",
                recipients=["greta@kunden.example"],
                subject="Ihr Corsa",
                message_id="<cf-answer@autohaus.example>",
                status="sent",
                sent_at=NOW,
            )
        )
        session.add(
            OutboxMail(
                idempotency_key="cf-notice",
                purpose="notification",
                lead_id=first,
                mail_from="leads@autohaus.example",
                recipients=["anna@autohaus.example"],
                subject="Interne Benachrichtigung",
                message_id="<cf-notice@autohaus.example>",
                status="sent",
            )
        )
    anna = logged_in(app, ANNA)
    text = page(anna, f"/customers/{cid}")
    assert "Greta Groß" in text and "greta@kunden.example" in text
    assert f"/leads/{first}" in text and f"/leads/{second}" in text
    assert f"/leads/{hidden}" not in text and "Grandland" not in text  # Carl's lead
    assert "1 more leads" in text or "1 weitere" in text
    assert "Corsa" in text and "Mokka" in text and "412345678" in text
    assert "Ist der Corsa noch da?" in text and "Bitte rufen Sie mich an" in text
    assert "Ihr Corsa" in text and "Interne Benachrichtigung" not in text  # staff notices: no
    assert "Anna Schmidt" in text  # the salesperson
    assert "Probefahrt" in text  # the kind in German, not test_drive
    assert "test_drive" not in text and "assigned" not in text
    # Carl's salesperson view: Greta is his customer too (through his lead), Anna's leads not
    carl = page(logged_in(app, CARL), f"/customers/{cid}")
    assert "Grandland" in carl and "Corsa" not in carl and "Ist der Corsa" not in carl


def test_foreign_and_impossible_customer_ids_are_not_found(
    team: sessionmaker[Session], app: Flask
) -> None:
    carls = customer(team, name="Carls Kunde", email="carls@kunden.example")
    lead(team, carls, CARL)
    anna = logged_in(app, ANNA)
    for url in (
        f"/customers/{carls}",
        f"/customers/{carls}/check",
        "/customers/999999",
        "/customers/99999999999999999999",
    ):
        response = anna.get(url)
        assert response.status_code == 404, url
        assert "carls@kunden.example" not in response.get_data(as_text=True)
    # the supervisor of Anna and Ben is not Carl's: also a 404
    assert logged_in(app, CHEF).get(f"/customers/{carls}").status_code == 404


def test_anonymous_visitors_go_to_the_login(team: sessionmaker[Session], app: Flask) -> None:
    cid = customer(team, name="X")
    anonymous = app.test_client()
    for url in ("/customers", "/customers/checks", f"/customers/{cid}"):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_menu_has_customers_for_every_role(team: sessionmaker[Session], app: Flask) -> None:
    for email in (ANNA, CHEF, ADA):
        text = page(logged_in(app, email), "/customers")
        assert 'href="/customers"' in text and ">Kunden<" in text


# --- moving a lead to another customer -------------------------------------------------------


def test_a_salesperson_moves_his_lead_to_the_right_customer(
    team: sessionmaker[Session], app: Flask
) -> None:
    wrong = customer(team, name="Falscher Kunde", email="falsch@kunden.example")
    right = customer(team, name="Richtiger Kunde", email="richtig@kunden.example")
    moved = lead(team, wrong, ANNA)
    lead(team, right, ANNA)
    anna = logged_in(app, ANNA)
    assert "Richtiger Kunde" in page(anna, f"/customers/relink/{moved}?q=richtig")
    response = post(anna, f"/customers/relink/{moved}", {"customer": str(right)})
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/customers/{right}"
    )
    with team() as session:
        assert session.get(Lead, moved).customer_id == right  # type: ignore[union-attr]
        lines = session.scalars(
            select(ProtocolEntry.detail).where(ProtocolEntry.lead_id == moved)
        ).all()
    assert any(f"moved from customer #{wrong} to customer #{right}" in x for x in lines)


def test_moving_a_lead_refuses_foreign_leads_foreign_customers_and_bad_numbers(
    team: sessionmaker[Session], app: Flask
) -> None:
    annas_customer = customer(team, name="Annas Kunde")
    annas_lead = lead(team, annas_customer, ANNA)
    carls_customer = customer(team, name="Carls Kunde")
    carls_lead = lead(team, carls_customer, CARL)
    anna = logged_in(app, ANNA)
    token = csrf_token(anna, f"/customers/relink/{annas_lead}")
    # Carl's lead: 404 by GET and POST
    assert anna.get(f"/customers/relink/{carls_lead}").status_code == 404
    data = {"customer": str(annas_customer), "csrf_token": token}
    assert anna.post(f"/customers/relink/{carls_lead}", data=data).status_code == 404
    # her lead to Carl's customer: 404, nothing moves
    data = {"customer": str(carls_customer), "csrf_token": token}
    assert anna.post(f"/customers/relink/{annas_lead}", data=data).status_code == 404
    for bad in ("abc", "-1", "1e9", "99999999999999999999", "", "٣"):
        data = {"customer": bad, "csrf_token": token}
        response = anna.post(f"/customers/relink/{annas_lead}", data=data)
        assert response.status_code == 200, bad
        assert "Kundennummer" in response.get_data(as_text=True)
    # without the CSRF token: refused
    response = anna.post(f"/customers/relink/{annas_lead}", data={"customer": "1"})
    assert response.status_code == 400
    with team() as session:
        assert session.get(Lead, annas_lead).customer_id == annas_customer  # type: ignore[union-attr]
        assert session.get(Lead, carls_lead).customer_id == carls_customer  # type: ignore[union-attr]


# --- the "please check" task of a fuzzy match ---------------------------------------------


def fuzzy_mail(name: str, email: str, postcode: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Website Autohaus <noreply@autohaus-web.example>"
    msg["To"] = "leads@autohaus.example"
    msg["Subject"] = f"Anfrage zu Ihrem Fahrzeug ({name})"
    msg["Message-ID"] = f"<fuzzy-{abs(hash(email))}@autohaus-web.example>"
    fields = [f"Name: {name}", f"E-Mail: {email}", f"PLZ: {postcode}", "Marke: Opel"]
    msg.set_content("\n".join([*fields, "Nachricht: Noch da?"]) + "\n")
    return msg.as_bytes(policy=policy.SMTP)


def fuzzy_pair(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    """A known customer with a lead of Anna's, then a mail from a similar name, same postcode:
    (known customer, new customer, the mailed lead)."""
    known = customer(
        factory,
        name="Hans Meier",
        first_name="Hans",
        last_name="Meier",
        email="hans@alt.example",
        phone="089 111111",
        postcode="80331",
        match_name="hans meier",
    )
    lead(factory, known, ANNA)
    ingest(factory, fuzzy_mail("Hans Maier", "hans.maier@neu.example", "80331"))
    with factory.begin() as session:
        mailed = session.scalars(select(Lead).order_by(Lead.id.desc())).first()
        assert mailed is not None and mailed.customer_id != known
        mailed.assignee_id = session.scalar(select(User.id).where(User.email == ANNA))
        new = mailed.customer_id
        assert new is not None
        return known, new, mailed.id


def test_a_mailed_lead_similar_to_a_known_customer_opens_a_check(
    team: sessionmaker[Session], app: Flask
) -> None:
    known, new, _mailed = fuzzy_pair(team)
    with team() as session:
        row = session.get(Customer, new)
        assert row is not None and row.check_since is not None
        assert [c[0] for c in row.check_candidates or []] == [known]
    anna = logged_in(app, ANNA)
    assert "Offene Prüfungen: 1" in page(anna, "/customers")
    checks = page(anna, "/customers/checks")
    assert "Hans Maier" in checks and "Hans Meier" not in checks
    text = page(anna, f"/customers/{new}")
    assert "Bitte prüfen" in text and f"/customers/{new}/check" in text
    compare = page(anna, f"/customers/{new}/check")
    assert "hans@alt.example" in compare and "hans.maier@neu.example" in compare


@pytest.mark.parametrize("decision", ["update", "keep", "new"])
def test_the_three_way_decision(team: sessionmaker[Session], app: Flask, decision: str) -> None:
    known, new, mailed = fuzzy_pair(team)
    anna = logged_in(app, ANNA)
    body: dict[str, Any] = {"candidate": str(known), f"choose_{decision}": "y"}
    if decision == "update":
        body["take_over"] = ["email", "not_a_field"]
    response = post(anna, f"/customers/{new}/check", body)
    assert response.status_code == 302
    with team() as session:
        known_row, new_row = session.get(Customer, known), session.get(Customer, new)
        lead_row = session.get(Lead, mailed)
        assert known_row is not None and new_row is not None and lead_row is not None
        assert new_row.check_since is None
        if decision == "new":
            assert lead_row.customer_id == new and new_row.merged_into_id is None
            assert known_row.email == "hans@alt.example"
        else:
            assert lead_row.customer_id == known and new_row.merged_into_id == known
            expected = "hans.maier@neu.example" if decision == "update" else "hans@alt.example"
            assert known_row.email == expected
            assert known_row.phone == "089 111111"  # not ticked: stays
        lines = session.scalars(
            select(ProtocolEntry.detail).where(ProtocolEntry.lead_id == mailed)
        ).all()
        assert any("merged into" in x or "checked by" in x for x in lines)
    assert "Nichts zu prüfen" in page(anna, "/customers/checks")
    # decided: a second POST changes nothing and says so
    again = post(anna, f"/customers/{new}/check", body, page=f"/customers/{known}")
    assert again.status_code in (302, 404)


def test_a_check_refuses_a_candidate_that_is_not_its_own(
    team: sessionmaker[Session], app: Flask
) -> None:
    _known, new, mailed = fuzzy_pair(team)
    other = customer(team, name="Irgendwer", email="irgendwer@kunden.example")
    lead(team, other, ANNA)
    anna = logged_in(app, ANNA)
    for candidate in (str(other), "abc", "99999999999999999999", ""):
        body = {"candidate": candidate, "choose_keep": "y"}
        response = post(anna, f"/customers/{new}/check", body)
        assert response.status_code == 404, candidate
    with team() as session:
        assert session.get(Lead, mailed).customer_id == new  # type: ignore[union-attr]
    # Carl sees neither customer: 404 on GET and POST
    carl = logged_in(app, CARL)
    assert carl.get(f"/customers/{new}/check").status_code == 404


def test_a_check_whose_candidate_was_merged_meanwhile_names_the_survivor(
    team: sessionmaker[Session], app: Flask
) -> None:
    from mailgate.distribution.customer_file import merge_customers

    known, new, mailed = fuzzy_pair(team)
    survivor = customer(team, name="Hans Meier", email="hans.meier@haupt.example")
    lead(team, survivor, ANNA)
    with team.begin() as session:
        merge_customers(session, survivor, known, [], actor="chef@x", now=NOW)
    anna = logged_in(app, ANNA)
    compare = page(anna, f"/customers/{new}/check")
    assert f"Kunden-Nr. {survivor}" in compare and "hans.meier@haupt.example" in compare
    body = {"candidate": str(survivor), "choose_keep": "y"}
    assert post(anna, f"/customers/{new}/check", body).status_code == 302
    with team() as session:
        assert session.get(Lead, mailed).customer_id == survivor  # type: ignore[union-attr]
