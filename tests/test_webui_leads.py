"""The lead list: search, filters, sort, pages, scope, bulk reassign, CSV export (both databases).

Leads about ingested mail are made the real way (``store_raw`` + the
pipeline); leads that need exact field values (VIN, due times, thousands of
rows) are inserted directly, and the ``lead_search`` triggers index them like
any other writer's.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from itertools import count
from urllib.parse import quote_plus

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.distribution.matching import normalise_phone
from mailgate.models import Customer, Lead, LeadSearch, User, utcnow
from mailgate.webui.leads.due import STATES, display_state

from .distribution_helpers import form_mail, ingest, protocol, setup, team_toml
from .webui_helpers import csrf_token, ensure_user, logged_in, post, web_app

DORA = '\n[[users]]\nemail = "dora@autohaus.example"\nname = "Dora Dritte"\n'
EMAILS = {k: f"{k}@autohaus.example" for k in ("anna", "ben", "carl", "chef", "ada", "dora")}
_numbers = count(1)


@pytest.fixture
def team(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Anna, Ben, Carl in Chef's team; Dora outside it; Ada admin; everyone with a password."""
    setup(factory, team_toml(extra=DORA))
    roles = {"chef": "supervisor", "ada": "admin"}
    for key, address in EMAILS.items():
        ensure_user(factory, address, roles.get(key, "salesperson"))
    return factory


@pytest.fixture
def app(team: sessionmaker[Session]) -> Flask:
    return web_app(team)


def user_id(factory: sessionmaker[Session], key: str) -> int:
    with factory() as session:
        found = session.scalar(select(User.id).where(User.email == EMAILS[key]))
    assert found is not None
    return found


def make_lead(
    factory: sessionmaker[Session],
    owner: str | None,
    *,
    name: str = "Karl Kunde",
    email: str | None = None,
    phone: str | None = None,
    vehicle: dict[str, object] | None = None,
    **values: object,
) -> int:
    """A lead with its customer, inserted directly (exact values); returns its id."""
    n = next(_numbers)
    owner_id = user_id(factory, owner) if owner else None
    with db.session_scope(factory) as session:
        customer = Customer(
            name=name,
            email=email or f"kunde{n}@kunden.example",
            phone=phone,
            phone_e164=normalise_phone(phone),
        )
        session.add(customer)
        session.flush()
        now = utcnow()
        lead = Lead(
            dedupe_key=f"web-leads-{n}",
            reply_token=f"web-leads-token-{n}",
            customer_id=customer.id,
            assignee_id=owner_id,
            vehicle=vehicle or {"make": "Opel", "model": "Astra"},
            status=values.pop("status", "assigned"),
            received_at=values.pop("received_at", now - timedelta(minutes=n)),
            confidence=values.pop("confidence", 0.9),
            soon_at=values.pop("soon_at", now + timedelta(hours=1)),
            overdue_at=values.pop("overdue_at", now + timedelta(hours=2)),
            **values,
        )
        session.add(lead)
        session.flush()
        return lead.id


def body(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def listed(client: FlaskClient, url: str) -> list[int]:
    """Lead ids linked from the list, in order."""
    return [
        int(i)
        for i in re.findall(r'<td data-label="[^"]+"><a href="/leads/(\d+)"', body(client, url))
    ]


# --- search ---------------------------------------------------------------------------------


def test_search_by_name_mail_phone_vin_and_listing(app: Flask, team: sessionmaker[Session]) -> None:
    ingest(team, form_mail(1, name="Fritz Fröhlich", email="fritz@kunden.example"))
    with team() as session:
        fritz = session.scalars(select(Lead)).one().id
    golf = make_lead(
        team,
        "anna",
        name="Gerda Golf",
        phone="+49 170 1234567",
        vehicle={"make": "VW", "model": "Golf", "vin": "WVWZZZ1KZ8W123456", "listing_id": "318877"},
    )
    other = make_lead(team, "anna", name="Otto Anders", phone="+49 89 7654321")
    client = logged_in(app, EMAILS["ada"])
    assert listed(client, "/leads?q=fröhlich") == [fritz]
    assert listed(client, "/leads?q=FRITZ%40kunden") == [fritz]  # e-mail, any case
    assert listed(client, "/leads?q=fritz+fröhlich") == [fritz]  # every word must match
    assert listed(client, "/leads?q=fritz+golf") == []
    # a phone number in any notation finds the stored E.164 number
    for typed in ("0170 1234567", "+49 (170) 123 45 67", "0049-170-1234567", "1234567"):
        assert listed(client, f"/leads?q={quote_plus(typed)}") == [golf], typed
    assert listed(client, "/leads?q=8w123456") == [golf]  # end of the VIN, any case
    assert listed(client, "/leads?q=318877") == [golf]  # listing id
    assert listed(client, "/leads?q=%25") == []  # LIKE wildcards are taken literally
    assert listed(client, "/leads?q=_") == []
    assert set(listed(client, "/leads")) == {fritz, golf, other}
    assert "Keine Anfrage passt" in body(client, "/leads?q=niemand")


def test_search_follows_later_changes_of_customer_and_vehicle(
    app: Flask, team: sessionmaker[Session]
) -> None:
    lead_id = make_lead(team, "anna", name="Erika Alt")
    with team.begin() as session:
        customer_id = session.get(Lead, lead_id).customer_id  # type: ignore[union-attr]
        session.execute(update(Customer).where(Customer.id == customer_id).values(name="Erika Neu"))
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(vehicle={"vin": "VF1ABC00012345678"})
        )
    client = logged_in(app, EMAILS["ada"])
    assert listed(client, "/leads?q=erika+neu") == [lead_id]
    assert listed(client, "/leads?q=erika+alt") == []
    assert listed(client, "/leads?q=vf1abc") == [lead_id]
    with team() as session:
        assert session.get(LeadSearch, lead_id) is not None


# --- filters, due state, sort, pages --------------------------------------------------------


def test_filters(app: Flask, team: sessionmaker[Session]) -> None:
    now = utcnow()
    a = make_lead(team, "anna", kind="test_drive", source="mobile.de", location="muenchen")
    b = make_lead(
        team, "ben", kind="inquiry", source="autoscout24", location="augsburg", campaign="815 - X"
    )
    service = make_lead(team, "carl", kind="service", category="service")
    closed = make_lead(team, "anna", status="closed")
    deleted = make_lead(team, "anna", status="deleted")
    review = make_lead(team, "ben", confidence=0.2)
    warned = make_lead(team, "ben", warnings=["phone number not valid"])
    unassigned = make_lead(team, None, status="new")
    old = make_lead(team, "carl", received_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC))
    client = logged_in(app, EMAILS["ada"])
    everything = set(listed(client, "/leads"))
    assert deleted not in everything and {a, b, closed, unassigned, old} <= everything
    assert listed(client, "/leads?status=deleted") == [deleted]
    assert closed not in listed(client, "/leads?status=open")
    assert listed(client, "/leads?kind=test_drive") == [a]
    assert listed(client, "/leads?source=autoscout24") == [b]
    assert listed(client, "/leads?location=augsburg") == [b]
    assert listed(client, "/leads?campaign=815+-+X") == [b]
    assert listed(client, "/leads?channel=service") == [service]
    assert service not in listed(client, "/leads?channel=sales")
    assert set(listed(client, f"/leads?assignee={user_id(team, 'ben')}")) == {b, review, warned}
    assert listed(client, "/leads?assignee=none") == [unassigned]
    assert set(listed(client, "/leads?review=1")) == {review, warned}
    assert listed(client, "/leads?date_from=2026-01-15&date_to=2026-01-15") == [old]
    assert old not in listed(client, f"/leads?date_from={now.date().isoformat()}")
    # garbage values are ignored: the list is wider, never an error
    assert set(listed(client, "/leads?kind=<x>&due=nope&date_from=31.02.&assignee=x")) == everything
    page = body(client, "/leads?kind=test_drive")
    assert "selected>Probefahrt</option>" in page and "Zurücksetzen" in page
    assert '<option value="815 - X">815 - X</option>' in page  # campaigns as they occur
    assert '<option value="service">Service</option>' in page


def test_due_state_filter_agrees_with_the_shown_state(
    app: Flask, team: sessionmaker[Session]
) -> None:
    now = utcnow()
    hour = timedelta(hours=1)
    made = {
        make_lead(team, "anna", soon_at=now + hour, overdue_at=now + 2 * hour),  # ok
        make_lead(team, "anna", soon_at=now - hour, overdue_at=now + hour),  # soon
        make_lead(team, "anna", soon_at=now - 2 * hour, overdue_at=now - hour),  # overdue
        make_lead(team, "anna", soon_at=now + hour, overdue_at=now + hour, escalation_stage=10),
        make_lead(team, "anna", soon_at=now - hour, overdue_at=now - hour, escalation_stage=11),
        make_lead(team, "anna", soon_at=now - hour, overdue_at=now - hour, escalation_stage=99),
        make_lead(team, "anna", status="closed"),
        make_lead(team, "anna", soon_at=None, overdue_at=None),
        # answered after its stage-1 time: the ladder stopped, so "ok", not "overdue"
        make_lead(
            team,
            "anna",
            status="contacted",
            soon_at=now - 2 * hour,
            overdue_at=now - hour,
            first_response_at=now - hour / 2,
        ),
    }
    client = logged_in(app, EMAILS["ada"])
    with team() as session:
        leads = list(session.scalars(select(Lead).where(Lead.id.in_(made))))
    expected = {
        s: {
            lead.id
            for lead in leads
            if display_state(
                utcnow(),
                lead.status,
                lead.escalation_stage,
                lead.soon_at,
                lead.overdue_at,
                answered=lead.first_response_at is not None,
            )
            == s
        }
        for s in STATES
    }
    assert all(expected[s] for s in STATES), expected  # every state occurs
    for state in STATES:
        assert set(listed(client, f"/leads?due={state}")) == expected[state], state
    page = body(client, "/leads")
    assert 'class="badge due due-overdue">überfällig</span>' in page
    assert 'class="badge due due-resubmission due-grey">Wiedervorlage</span>' in page
    assert 'class="badge due due-paused due-grey">pausiert</span>' in page
    assert 'class="badge due due-closed due-grey">abgeschlossen</span>' in page


def test_sort_orders_and_pages_keep_the_filter(app: Flask, team: sessionmaker[Session]) -> None:
    base = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    ids = [
        make_lead(
            team,
            "anna",
            name=f"Zora Nr{n:02d}",
            received_at=base + timedelta(hours=n),
            kind="service",
        )
        for n in range(55)
    ]
    make_lead(team, "anna", kind="inquiry")
    client = logged_in(app, EMAILS["ada"])
    first = body(client, "/leads?kind=service&sort=oldest")
    assert "(55)" in first and "Seite 1 von 2" in first
    assert 'href="/leads?page=2&amp;kind=service&amp;sort=oldest"' in first
    assert listed(client, "/leads?kind=service&sort=oldest") == ids[:50]
    assert listed(client, "/leads?page=2&kind=service&sort=oldest") == ids[50:]
    assert listed(client, "/leads?kind=service")[:3] == ids[::-1][:3]  # newest first
    by_name = listed(client, "/leads?kind=service&sort=customer&q=nr0")
    assert by_name == ids[:10]
    now = utcnow()
    with team.begin() as session:
        session.execute(
            update(Lead)
            .where(Lead.id == ids[7])
            .values(last_activity_at=now + timedelta(minutes=5))
        )
        session.execute(
            update(Lead).where(Lead.id == ids[3]).values(overdue_at=now - timedelta(days=9))
        )
    assert listed(client, "/leads?kind=service&sort=activity")[0] == ids[7]
    assert listed(client, "/leads?kind=service&sort=due")[0] == ids[3]


# --- who sees what --------------------------------------------------------------------------


def test_salesperson_sees_and_exports_only_own_leads(
    app: Flask, team: sessionmaker[Session]
) -> None:
    own = make_lead(team, "anna", name="Anna Eigen", source="mobile.de", campaign="Anna-Aktion")
    others = make_lead(
        team, "ben", name="Bens Kunde", source="geheim.example", campaign="Ben-Aktion"
    )
    client = logged_in(app, EMAILS["anna"])
    assert listed(client, "/leads") == [own]
    filters = body(client, "/leads")  # the filter offers only values of her own leads
    assert ">mobile.de<" in filters and ">Anna-Aktion<" in filters
    assert "geheim.example" not in filters and "Ben-Aktion" not in filters
    assert listed(client, f"/leads?assignee={user_id(team, 'ben')}") == []
    assert listed(client, "/leads?q=bens") == []
    page = body(client, "/leads")
    assert "Neu zuweisen" not in page and 'name="lead_ids"' not in page  # no bulk form
    assert len(export(client, f"/leads/export.csv?assignee={user_id(team, 'ben')}")) == 1
    rows = export(client, "/leads/export.csv")
    assert [r[0] for r in rows[1:]] == [str(own)]
    supervisor = logged_in(app, EMAILS["chef"])
    dora_lead = make_lead(team, "dora")
    assert set(listed(supervisor, "/leads")) == {own, others}  # his team, not Dora
    assert dora_lead in listed(logged_in(app, EMAILS["ada"]), "/leads")


def test_bulk_reassign_by_the_supervisor(app: Flask, team: sessionmaker[Session]) -> None:
    first, second = make_lead(team, "anna"), make_lead(team, "anna")
    client = logged_in(app, EMAILS["chef"])
    response = post(
        client,
        "/leads/reassign",
        {
            "lead_ids": [first, second],
            "target": user_id(team, "ben"),
            "note": "Urlaub",
            "back": "kind=inquiry",
        },
        page="/leads",
    )
    assert response.status_code == 302 and response.headers["Location"] == "/leads?kind=inquiry"
    with team() as session:
        owners = {lead.assignee_id for lead in session.scalars(select(Lead))}
    assert owners == {user_id(team, "ben")}
    entries = protocol(team, first)
    assert (
        "reassigned",
        "from anna@autohaus.example to ben@autohaus.example; note: Urlaub",
    ) in entries
    assert "2 Anfragen an Ben Berger neu zugewiesen." in body(client, "/leads")


def test_bulk_reassign_is_refused_outside_role_scope_and_token(
    app: Flask, team: sessionmaker[Session]
) -> None:
    mine, doras = make_lead(team, "anna"), make_lead(team, "dora")
    ben = user_id(team, "ben")
    salesperson = logged_in(app, EMAILS["anna"])
    token = csrf_token(salesperson, "/leads")
    refused = salesperson.post(
        "/leads/reassign", data={"lead_ids": [mine], "target": ben, "csrf_token": token}
    )
    assert refused.status_code == 403
    chef = logged_in(app, EMAILS["chef"])
    token = csrf_token(chef, "/leads")
    no_token = chef.post("/leads/reassign", data={"lead_ids": [mine], "target": ben})
    assert no_token.status_code == 400
    outside = chef.post(
        "/leads/reassign", data={"lead_ids": [mine, doras], "target": ben, "csrf_token": token}
    )
    assert outside.status_code == 404  # Dora's lead is not in his scope: all refused
    to_dora = chef.post(
        "/leads/reassign",
        data={"lead_ids": [mine], "target": user_id(team, "dora"), "csrf_token": token},
    )
    assert to_dora.status_code == 302  # Dora is no choice of his: refused with a message
    assert "Bitte Anfragen auswählen und festlegen, wer sie übernimmt." in body(chef, "/leads")
    with team.begin() as session:
        session.execute(update(Lead).where(Lead.id == mine).values(status="closed"))
    closed = chef.post(
        "/leads/reassign", data={"lead_ids": [mine], "target": ben, "csrf_token": token}
    )
    assert closed.status_code == 302
    assert f"Anfrage {mine} ist abgeschlossen." in body(chef, "/leads?status=closed")
    with team() as session:
        owners = dict(session.execute(select(Lead.id, Lead.assignee_id)).all())
    assert owners == {mine: user_id(team, "anna"), doras: user_id(team, "dora")}


# --- CSV ------------------------------------------------------------------------------------


def export(client: FlaskClient, url: str) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200
    try:
        return parse_csv(response.data)
    finally:
        response.close()


def parse_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def test_csv_export_opens_cleanly_in_german_excel(app: Flask, team: sessionmaker[Session]) -> None:
    received = datetime(2026, 7, 1, 8, 5, tzinfo=UTC)  # 10:05 in Berlin (summer time)
    lead_id = make_lead(
        team,
        "anna",
        name='=HYPERLINK("http://evil.example")',
        email="jörg@kunden.example",
        phone="+49 170 1234567",
        vehicle={
            "make": "Škoda",
            "model": "Octavia; Combi",
            "price": 18990.5,
            "vin": "TMBJJ7NE0L0123456",
        },
        received_at=received,
        confidence=0.85,
        kind="test_drive",
        source="oem:skoda",
    )
    make_lead(team, "anna", kind="inquiry")
    client = logged_in(app, EMAILS["ada"])
    response = client.get("/leads/export.csv?kind=test_drive")
    data = response.data
    response.close()
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = parse_csv(data)
    header, row = rows[0], dict(zip(rows[0], rows[1], strict=True))
    assert len(rows) == 2 and header[:3] == ["Nr.", "Eingang", "Kunde"]
    assert b";" in data.splitlines()[0]
    assert row["Nr."] == str(lead_id)
    assert row["Eingang"] == "01.07.2026 10:05"
    assert row["Kunde"] == '\'=HYPERLINK("http://evil.example")'  # formula defused
    assert row["Telefon"] == "'+49 170 1234567"
    assert row["E-Mail"] == "jörg@kunden.example"
    assert row["Art"] == "Probefahrt" and row["Marke"] == "Škoda"
    assert row["Modell"] == "Octavia; Combi"  # the separator inside a cell is quoted
    assert row["Preis"] == "18990,50" and row["Erkennungssicherheit"] == "0,85"
    assert row["FIN"] == "TMBJJ7NE0L0123456" and row["Zuständig"] == "Anna Schmidt"
    assert row["Quelle"] == "Hersteller: Skoda" and row["Quellen-Code"] == "oem:skoda"
    assert len(set(header)) == len(header)  # no column name twice
    english = logged_in(app, EMAILS["ben"])
    with team.begin() as session:
        session.execute(update(User).where(User.email == EMAILS["ben"]).values(language="en"))
    assert parse_csv(english.get("/leads/export.csv").data)[0][:3] == [
        "No.",
        "Received",
        "Customer",
    ]


# --- pool -----------------------------------------------------------------------------------

POOL_USER = '\n[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n'


@pytest.fixture
def pool_app(factory: sessionmaker[Session]) -> Flask:
    nobody = {k: "receives_leads = false" for k in ("anna", "ben", "carl")}
    setup(
        factory,
        team_toml(
            'mode = "pool"\npool_user = "pool@autohaus.example"\npool_oldest_only = true',
            nobody,
            POOL_USER,
        ),
    )
    roles = {"chef": "supervisor", "ada": "admin"}
    for key in ("anna", "ben", "chef", "ada"):
        ensure_user(factory, EMAILS[key], roles.get(key, "salesperson"))
    ingest(factory, form_mail(1, name="Olga Älteste"), form_mail(2, name="Nina Neuer"))
    return web_app(factory)


def pool_ids(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(Lead.id).order_by(Lead.received_at, Lead.id)))


def test_pool_take_oldest_only(pool_app: Flask, factory: sessionmaker[Session]) -> None:
    older, newer = pool_ids(factory)
    client = logged_in(pool_app, EMAILS["anna"])
    page = body(client, "/pool")
    assert "Olga Älteste" in page and "Nina Neuer" in page
    assert page.count('type="submit" class="btn btn-primary btn-sm" aria-label="Anfrage von') == 1
    assert page.count("disabled") == 1 and "nur die älteste" in page
    assert f'action="/pool/{older}/take"' in page and f'action="/pool/{newer}/take"' not in page
    # the pool leads are in her list too (own + pool)
    assert set(listed(client, "/leads")) == {older, newer}
    forged = post(client, f"/pool/{newer}/take", page="/pool")
    assert forged.status_code == 302 and forged.headers["Location"] == "/pool"
    assert (
        f"Aus dem Pool darf nur die älteste Anfrage übernommen werden (Anfrage {older})."
        in body(client, "/pool")
    )
    assert client.post(f"/pool/{older}/take").status_code == 400  # no CSRF token
    taken = post(client, f"/pool/{older}/take", page="/pool")
    assert taken.status_code == 302 and taken.headers["Location"] == f"/leads/{older}"
    assert f"Anfrage {older} gehört jetzt Ihnen." in body(client, f"/leads/{older}")
    anna = user_id(factory, "anna")
    with factory() as session:
        lead = session.get(Lead, older)
        assert lead is not None and lead.assignee_id == anna
    ben = logged_in(pool_app, EMAILS["ben"])
    again = post(ben, f"/pool/{older}/take", page="/pool")
    assert again.status_code == 302
    assert f"Anfrage {older} ist nicht mehr im Pool." in body(ben, "/pool")
    assert f'action="/pool/{newer}/take"' in body(ben, "/pool")  # now the oldest


def test_pool_page_without_a_pool(app: Flask) -> None:
    client = logged_in(app, EMAILS["anna"])
    assert "Es gibt keinen Pool" in body(client, "/pool")


def test_pages_need_a_login(app: Flask) -> None:
    anonymous = app.test_client()
    for url in ("/leads", "/pool", "/leads/export.csv"):
        assert anonymous.get(url).headers["Location"].startswith("/login"), url
    assert anonymous.post("/leads/reassign").status_code in (302, 400)


def test_list_in_english(app: Flask, team: sessionmaker[Session]) -> None:
    make_lead(team, "anna", name="Emma English")
    with team.begin() as session:
        session.execute(update(User).where(User.email == EMAILS["ada"]).values(language="en"))
    page = body(logged_in(app, EMAILS["ada"]), "/leads")
    for text in ("Waiting since", "Last activity", "Export CSV", "Reassign the selected leads"):
        assert text in page
    assert "Wartet seit" not in page


def test_states_cover_every_python_state() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert display_state(now, "assigned", 0, now + hour, now + 2 * hour) == "ok"
    assert display_state(now, "assigned", 1, now - hour, now + hour) == "soon"
    assert display_state(now, "contacted", 2, now - 2 * hour, now - hour) == "overdue"
    assert display_state(now, "assigned", 10, now + hour, now + hour) == "resubmission"
    assert display_state(now, "assigned", 11, now - hour, now - hour) == "overdue"
    assert display_state(now, "new", 99, now - hour, now - hour) == "paused"
    assert display_state(now, "closed", 0, now - hour, now - hour) == "closed"
    assert display_state(now, "contacted", 2, now - hour, now - hour, answered=True) == "ok"
    assert display_state(now, "contacted", 10, now - hour, now - hour, answered=True) == "overdue"


def test_row_times_are_written_like_the_local_filter(app: Flask) -> None:
    from zoneinfo import ZoneInfo

    from flask_babel import force_locale

    from mailgate.webui.i18n import local_time
    from mailgate.webui.leads.rows import RowFormatter

    moments = [
        datetime(2026, 1, 5, 23, 30, tzinfo=UTC),  # next day in Berlin
        datetime(2026, 7, 1, 8, 5, tzinfo=UTC),  # summer time
        datetime(2026, 10, 25, 0, 59, tzinfo=UTC),  # the night the clocks go back
    ]
    with app.test_request_context("/leads"):
        for language in ("de", "en"):
            with force_locale(language):
                formatter = RowFormatter(ZoneInfo("Europe/Berlin"), utcnow())
                for moment in moments:
                    assert formatter.time(moment) == local_time(moment), (language, moment)
        with force_locale("de"):
            assert RowFormatter(ZoneInfo("Europe/Berlin"), utcnow()).time(moments[0]) == (
                "06.01.2026 00:30"
            )


def test_count_stops_at_the_cap(
    app: Flask, team: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailgate.webui.leads import views

    made = [make_lead(team, "anna") for _ in range(7)]
    client = logged_in(app, EMAILS["ada"])
    assert '<small id="lead-count">(7)</small>' in body(client, "/leads")
    monkeypatch.setattr(views, "COUNT_CAP", 5)
    page = body(client, "/leads")
    assert '<small id="lead-count">(mehr als 5)</small>' in page
    assert set(listed(client, "/leads")) == set(made)  # the page itself is complete


def test_sources_show_by_name_never_as_codes(app: Flask, team: sessionmaker[Session]) -> None:
    """Issue 21 finding 2: "Quelle: unknown", "Walk-in", raw codes on lists and My day."""
    now = utcnow()
    late = {"soon_at": now - timedelta(hours=2), "overdue_at": now - timedelta(hours=1)}
    for source in ("unknown", "Walk-in", "oem:nissan", "autoscout24"):
        make_lead(
            team, "anna", source=source, vehicle={"make": "Nissan", "model": "Qashqai"}, **late
        )
    anna = logged_in(app, EMAILS["anna"])
    for url in ("/leads", "/my-day"):
        page = body(anna, url)
        cells = re.findall(r'<td data-label="Quelle">([^<]*)</td>', page)
        assert sorted(cells) == ["AutoScout24", "Hersteller: Nissan", "Laufkundschaft", "Unbekannt"]
        assert page.count("Nissan Qashqai") == 4, url  # the vehicle column
    options = body(anna, "/leads").split('id="f-source"', 1)[1].split("</select>", 1)[0]
    assert ">Unbekannt<" in options and ">Laufkundschaft<" in options and ">unknown<" not in options
