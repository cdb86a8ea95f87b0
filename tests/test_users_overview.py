"""The users overview (issue 20, item 12; seed 002's "Benutzer" block).

One table of all users with receives leads, can be assigned, groups, absence (until,
substitute), locations and category permissions; the two switches editable in place by a
small form each (POST + CSRF, no JavaScript needed); the solo-distribution and pool warnings
beside it.  Admins only.  Both databases.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.dealer_settings import stored_document
from mailgate.models import User

from .distribution_helpers import setup, team_toml
from .webui_helpers import csrf_token, ensure_user, logged_in, post, web_app

ANNA, BEN, CARL, CHEF, ADA = (
    f"{n}@autohaus.example" for n in ("anna", "ben", "carl", "chef", "ada")
)
GROUPS = '\n[[groups]]\nname = "augsburg"\nmatch = { location = ["augsburg"] }\n'


@pytest.fixture(name="team")
def team_fixture(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    setup(
        factory,
        team_toml(
            users={
                "ben": 'absences = [{ from = "2026-01-01", until = "2099-12-31", '
                'substitute = "anna@autohaus.example" }]',
                "carl": 'groups = ["augsburg"]\npermissions = { service = "own_location", '
                'financing = "none" }',
            },
            extra=GROUPS,
        ),
    )
    for email in (ANNA, BEN, CARL):
        ensure_user(factory, email, "salesperson")
    ensure_user(factory, CHEF, "supervisor")
    ensure_user(factory, ADA, "admin")
    return factory


@pytest.fixture(name="app")
def app_fixture(team: sessionmaker[Session]) -> Flask:
    return web_app(team)


def user_id(factory: sessionmaker[Session], email: str) -> int:
    with factory() as session:
        found = session.scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


def row_of(page: str, uid: int) -> str:
    match = re.search(rf'<tr id="user-{uid}".*?</tr>', page, re.S)
    assert match, uid
    return match.group(0)


def switch(factory: sessionmaker[Session], email: str) -> tuple[bool, bool, bool, bool]:
    """(receives, can be assigned) in the database and in the settings document."""
    with factory() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        entry = next(u for u in stored_document(session)["users"] if u["email"] == email)
        return (
            user.receives_leads,
            user.can_be_assigned,
            entry["receives_leads"],
            entry["can_be_assigned"],
        )


def test_the_overview_shows_every_users_distribution_setup_in_german(
    team: sessionmaker[Session], app: Flask
) -> None:
    page = logged_in(app, ADA).get("/settings/users").get_data(as_text=True)
    ben = row_of(page, user_id(team, BEN))
    assert "abwesend bis 31.12.2099" in ben and "Vertretung: Anna Schmidt" in ben
    assert "muenchen" in ben  # his location
    assert "eigene, Team- und Pool-Anfragen" in ben  # no permission entries: no ALL anywhere
    carl = row_of(page, user_id(team, CARL))
    assert "augsburg" in carl  # group and location
    assert "Service: nur seine Standorte" in carl or "Service: nur" in carl
    assert "Finanzierung: keine" in carl
    anna = row_of(page, user_id(team, ANNA))  # no entries: no ALL anywhere (seed 003)
    assert "eigene, Team- und Pool-Anfragen" in anna and "alle Anfragen" not in anna
    ada = row_of(page, user_id(team, ADA))
    assert "alle Anfragen (Admin)" in ada  # an admin sees every lead, whatever his entries
    assert 'aria-pressed="false"' in ada  # receives no leads, cannot be assigned
    for header in ("Bekommt neue Anfragen", "Kann zugewiesen bekommen", "Abwesenheit", "Gruppen"):
        assert header in page, header
    for raw in ("own_location", "receives_leads</", "salesperson<", ">none<"):
        assert raw not in page, raw


def test_a_switch_is_a_small_form_that_works_without_javascript(
    team: sessionmaker[Session], app: Flask
) -> None:
    ada = logged_in(app, ADA)
    anna = user_id(team, ANNA)
    page = ada.get("/settings/users").get_data(as_text=True)
    row = row_of(page, anna)
    assert row.count('method="post"') == 2 and row.count('name="csrf_token"') == 2
    assert switch(team, ANNA) == (True, True, True, True)
    body = {"switch": "receives_leads", "value": "0"}
    response = post(ada, f"/settings/users/{anna}/switch", body, page="/settings/users")
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/settings/users#user-{anna}"
    )
    assert switch(team, ANNA) == (False, True, False, True)
    # the same value twice (a double click): stays off, does not flip back
    post(ada, f"/settings/users/{anna}/switch", body, page="/settings/users")
    assert switch(team, ANNA) == (False, True, False, True)
    body = {"switch": "can_be_assigned", "value": "0"}
    post(ada, f"/settings/users/{anna}/switch", body, page="/settings/users")
    assert switch(team, ANNA) == (False, False, False, False)
    body = {"switch": "receives_leads", "value": "1"}
    post(ada, f"/settings/users/{anna}/switch", body, page="/settings/users")
    assert switch(team, ANNA) == (True, False, True, False)
    page = ada.get("/settings/users").get_data(as_text=True)
    assert "Gespeichert: Anna Schmidt." in page


def test_the_solo_warning_appears_beside_the_table(team: sessionmaker[Session], app: Flask) -> None:
    ada = logged_in(app, ADA)
    assert "Einzelverteilung" not in ada.get("/settings/users").get_data(as_text=True)
    for email in (BEN, CARL):
        body = {"switch": "receives_leads", "value": "0"}
        uid = user_id(team, email)
        post(ada, f"/settings/users/{uid}/switch", body, page="/settings/users")
    page = ada.get("/settings/users").get_data(as_text=True)
    assert "Bitte prüfen Sie die Verteilung" in page
    warnings = page.split("Bitte prüfen Sie die Verteilung")[1].split("</section>")[0]
    assert "anna@autohaus.example" in warnings and "Einzelverteilung" in warnings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("active", "0"),
        ("role", "admin"),
        ("receives_leads", "2"),
        ("receives_leads", ""),
        ("receives_leads", "true"),
        ("", ""),
        ("x" * 5000, "1"),
        ("receives_leads\x00", "0"),
    ],
)
def test_hostile_switches_change_nothing(
    team: sessionmaker[Session], app: Flask, name: str, value: str
) -> None:
    ada = logged_in(app, ADA)
    anna = user_id(team, ANNA)
    token = csrf_token(ada, "/settings/users")
    data = {"switch": name, "value": value, "csrf_token": token}
    response = ada.post(f"/settings/users/{anna}/switch", data=data)
    assert response.status_code in (302, 400), (name, value)
    assert "Traceback" not in response.get_data(as_text=True)
    assert switch(team, ANNA) == (True, True, True, True)
    with team() as session:
        assert session.scalar(select(User.role).where(User.email == ANNA)) == "salesperson"
    if response.status_code == 302:
        page = ada.get("/settings/users").get_data(as_text=True)
        assert "Unbekannter Schalter" in page


def test_only_admins_reach_the_overview_and_its_switches(
    team: sessionmaker[Session], app: Flask
) -> None:
    anna = user_id(team, ANNA)
    for email in (ANNA, CHEF):
        client = logged_in(app, email)
        assert client.get("/settings/users").status_code == 403
        token = csrf_token(client, "/account")
        data = {"switch": "receives_leads", "value": "0", "csrf_token": token}
        assert client.post(f"/settings/users/{anna}/switch", data=data).status_code == 403
    anonymous = app.test_client()
    response = anonymous.get("/settings/users")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    ada = logged_in(app, ADA)
    # without the CSRF token: refused; an unknown user: 404
    response = ada.post(f"/settings/users/{anna}/switch", data={"switch": "receives_leads"})
    assert response.status_code == 400
    token = csrf_token(ada, "/settings/users")
    data = {"switch": "receives_leads", "value": "0", "csrf_token": token}
    for uid in ("999999", "99999999999999999999"):
        assert ada.post(f"/settings/users/{uid}/switch", data=data).status_code == 404
    assert switch(team, ANNA) == (True, True, True, True)


def test_an_inactive_user_is_listed_without_live_switches(
    team: sessionmaker[Session], app: Flask
) -> None:
    gone = ensure_user(team, "alt@autohaus.example", "salesperson", name="Otto Alt")
    with team.begin() as session:
        user = session.get(User, gone)
        assert user is not None
        user.active = False
    ada = logged_in(app, ADA)
    row = row_of(ada.get("/settings/users").get_data(as_text=True), gone)
    assert "Otto Alt" in row and "inaktiv" in row and row.count("disabled") == 2
    body = {"switch": "receives_leads", "value": "0"}
    response = post(ada, f"/settings/users/{gone}/switch", body, page="/settings/users")
    assert response.status_code == 302
    assert "inaktiv" in ada.get("/settings/users").get_data(as_text=True)
