"""Accounts: first-admin setup, login and its throttle, CSRF, roles and lead scope, reset."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.base_url import set_base_url
from mailgate.models import Lead, LoginFailure, OutboxMail, User, utcnow
from mailgate.webui.accounts import throttle

from .webui_helpers import (
    PASSWORD,
    csrf_token,
    ensure_user,
    logged_in,
    login,
    post,
    setup_token,
    web_app,
)

ADMIN, ANNA, CHEF, BERT = (
    "admin@autohaus.example",
    "anna@autohaus.example",
    "chef@autohaus.example",
    "bert@autohaus.example",
)


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    ensure_user(dealer, ADMIN, "admin")
    ensure_user(dealer, ANNA, "salesperson", supervisor_email=CHEF)
    ensure_user(dealer, CHEF, "supervisor")
    ensure_user(dealer, BERT, "salesperson")  # not in Carl Chef's team
    return web_app(dealer)


def add_lead(factory: sessionmaker[Session], owner: str | None, n: int, **values: object) -> int:
    with db.session_scope(factory) as session:
        owner_id = session.scalar(select(User.id).where(User.email == owner)) if owner else None
        lead = Lead(
            dedupe_key=f"test-{n}",
            reply_token=f"token-{n}",
            assignee_id=owner_id,
            subject=f"Anfrage Nummer {n}",
            status="assigned",
            **values,
        )
        session.add(lead)
        session.flush()
        return lead.id


def test_fresh_install_leads_to_the_one_time_setup_page(factory: sessionmaker[Session]) -> None:
    app = web_app(factory)
    client = app.test_client()
    assert client.get("/").headers["Location"] == "/login"
    assert client.get("/login").headers["Location"] == "/setup"
    assert client.get("/leads").headers["Location"] == "/setup"
    assert client.get("/setup").status_code == 403  # only with the link the service printed
    token = setup_token(factory)
    page = f"/setup?token={token}"
    weak = post(
        client,
        page,
        {"name": "A", "email": ADMIN, "password": "a" * 12, "confirm": "a" * 12, "token": token},
    )
    assert weak.status_code == 400 and "zu wenige verschiedene Zeichen" in weak.get_data(True)
    made = post(
        client,
        page,
        {
            "name": "Ada Admin",
            "email": ADMIN,
            "password": PASSWORD,
            "confirm": PASSWORD,
            "token": token,
        },
    )
    assert made.status_code == 302
    assert client.get("/leads").status_code == 200  # logged in as the new admin
    with factory() as session:
        admin = session.scalar(select(User).where(User.email == ADMIN))
        assert admin is not None and admin.role == "admin"
        assert admin.password_hash and admin.password_hash.startswith("$argon2id$")
    # Closed for good: nobody can create a second admin through it, not with the token either.
    assert app.test_client().get("/setup").status_code == 404
    assert app.test_client().get(page).status_code == 404


def test_login_logout_and_wrong_password(app: Flask) -> None:
    client = app.test_client()
    wrong = post(client, "/login", {"email": ANNA, "password": "falsch-falsch-1"})
    assert wrong.status_code == 401
    assert "E-Mail-Adresse oder Passwort ist falsch." in wrong.get_data(True)
    unknown = post(client, "/login", {"email": "nobody@autohaus.example", "password": "x" * 12})
    assert unknown.status_code == 401  # same answer: no account enumeration
    assert client.get("/leads").status_code == 302
    login(client, ANNA.upper())  # e-mail is case-insensitive
    assert client.get("/leads").status_code == 200
    assert post(client, "/logout", page="/leads").status_code == 302
    assert client.get("/leads").headers["Location"].startswith("/login")


def test_login_is_throttled_after_five_failures(
    app: Flask, dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    monkeypatch.setattr("mailgate.webui.accounts.views.utcnow", lambda: now)  # a still clock
    client = app.test_client()
    for _ in range(throttle.FREE_FAILURES):
        assert post(client, "/login", {"email": ANNA, "password": "geraten-123"}).status_code == 401
    # Now even the right password has to wait, and the page says how long.
    locked = post(client, "/login", {"email": ANNA, "password": PASSWORD})
    assert locked.status_code == 429 and "Bitte in 1 Sekunde erneut" in locked.get_data(True)
    assert locked.headers["Retry-After"] == "1"
    # Another account from the same address is not slowed down at all.
    login(client, BERT)
    with dealer() as session:
        assert session.scalar(select(LoginFailure.email).limit(1)) == ANNA


def test_success_clears_the_failures_of_the_account(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    client = app.test_client()
    for _ in range(throttle.FREE_FAILURES - 1):
        post(client, "/login", {"email": ANNA, "password": "geraten-123"})
    login(client, ANNA)
    with dealer() as session:
        assert not session.scalars(select(LoginFailure).where(LoginFailure.email == ANNA)).all()


def test_every_post_needs_a_csrf_token(app: Flask) -> None:
    client = app.test_client()
    refused = client.post("/login", data={"email": ANNA, "password": PASSWORD})
    assert refused.status_code == 400 and "Formular ist abgelaufen" in refused.get_data(True)
    login(client, ANNA)
    assert client.post("/logout").status_code == 400
    assert client.get("/leads").status_code == 200  # still logged in
    # A token from another session is no good either.
    other = app.test_client()
    foreign = csrf_token(other, "/login")
    assert client.post("/logout", data={"csrf_token": foreign}).status_code == 400


def test_session_cookie_flags(dealer: sessionmaker[Session]) -> None:
    ensure_user(dealer, ADMIN, "admin")
    # the test client asks for "localhost": Secure when that is the https base URL's host
    # (another name over plain http gets none: tests/test_host_header.py)
    for base_url, secure in (("", False), ("https://localhost", True)):
        with db.session_scope(dealer) as session:
            set_base_url(session, base_url)  # the one base URL: the dealer setting
        app = web_app(dealer)
        client = app.test_client()
        response = post(client, "/login", {"email": ADMIN, "password": PASSWORD})
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure


def test_open_redirect_after_login_is_refused(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client, "/login")
    for target, expected in (
        ("https://evil.example/", "/leads"),
        ("//evil.example/x", "/leads"),
        ("/inbound", "/inbound"),
    ):
        client.get("/login")
        response = client.post(
            f"/login?next={target}",
            data={"email": ADMIN, "password": PASSWORD, "csrf_token": token},
        )
        location = response.headers["Location"]
        assert location == (expected if expected != "/leads" else "/"), (target, location)
        token = csrf_token(client, "/account")
        client.post("/logout", data={"csrf_token": token})
        token = csrf_token(client, "/login")


def test_salesperson_sees_own_leads_and_the_pool_only(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    own = add_lead(dealer, ANNA, 1)
    others = add_lead(dealer, BERT, 2)
    client = logged_in(app, ANNA)
    listing = client.get("/leads").get_data(True)
    assert f'href="/leads/{own}"' in listing and f'href="/leads/{others}"' not in listing
    assert client.get(f"/leads/{own}").status_code == 200
    assert client.get(f"/leads/{others}").status_code == 404  # not by URL either
    assert client.get("/inbound").status_code == 403  # admin area
    assert 'href="/inbound"' not in listing


def test_supervisor_sees_the_team_admin_sees_all(app: Flask, dealer: sessionmaker[Session]) -> None:
    annas, berts = add_lead(dealer, ANNA, 1), add_lead(dealer, BERT, 2)
    chef = logged_in(app, CHEF)
    assert chef.get(f"/leads/{annas}").status_code == 200
    assert chef.get(f"/leads/{berts}").status_code == 404
    admin = logged_in(app, ADMIN)
    assert admin.get(f"/leads/{annas}").status_code == 200
    assert admin.get(f"/leads/{berts}").status_code == 200
    assert admin.get("/inbound").status_code == 200


def test_category_permission_limits_what_a_salesperson_sees(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    ensure_user(dealer, ANNA, "salesperson", permissions={"service": "none"}, supervisor_email=CHEF)
    sales = add_lead(dealer, ANNA, 1, category="sales")
    service = add_lead(dealer, ANNA, 2, category="service")
    client = logged_in(app, ANNA)
    assert client.get(f"/leads/{sales}").status_code == 200
    assert client.get(f"/leads/{service}").status_code == 404


def test_deactivated_user_is_logged_out(app: Flask, dealer: sessionmaker[Session]) -> None:
    client = logged_in(app, ANNA)
    with db.session_scope(dealer) as session:
        user = session.scalar(select(User).where(User.email == ANNA))
        assert user is not None
        user.active = False
    assert client.get("/leads").status_code == 302


def test_password_reset_by_mail_link_works_once(app: Flask, dealer: sessionmaker[Session]) -> None:
    with db.session_scope(dealer) as session:
        set_base_url(session, "https://leads.autohaus.example")
    elsewhere = logged_in(app, ANNA)  # another browser, to be logged out by the reset
    client = app.test_client()
    answer = post(client, "/password/forgot", {"email": ANNA})
    assert answer.status_code == 302
    # Unknown address: the same answer, and no mail.
    post(client, "/password/forgot", {"email": "nobody@autohaus.example"})
    with dealer() as session:
        mails = session.scalars(select(OutboxMail).where(OutboxMail.purpose == "password_reset"))
        mails = mails.all()
    assert len(mails) == 1 and mails[0].recipients == [ANNA]
    message = email.message_from_bytes(mails[0].raw or b"", policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"https://leads\.autohaus\.example(/password/reset/[A-Za-z0-9_.\-]+)", text)
    assert link, text
    new_password = "Neues-Passwort-2026"
    form = client.get(link.group(1))
    assert form.status_code == 200
    done = post(client, link.group(1), {"password": new_password, "confirm": new_password})
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    # The link is used up; the old password is gone; other sessions ended.
    again = client.get(link.group(1))
    assert again.status_code == 302 and again.headers["Location"] == "/password/forgot"
    assert post(client, "/login", {"email": ANNA, "password": PASSWORD}).status_code == 401
    login(client, ANNA, new_password)
    assert elsewhere.get("/leads").status_code == 302


def test_changing_the_password_ends_other_sessions(app: Flask) -> None:
    here, there = logged_in(app, BERT), logged_in(app, BERT)
    new_password = "Anderes-Passwort-7"
    response = post(
        here,
        "/account",
        {
            "form": "password",
            "pw-current": PASSWORD,
            "pw-password": new_password,
            "pw-confirm": new_password,
        },
    )
    assert response.status_code == 302
    assert here.get("/leads").status_code == 200
    assert there.get("/leads").status_code == 302


def test_language_switch_before_login_and_per_user(app: Flask) -> None:
    client = app.test_client()
    assert "Anmelden" in client.get("/login").get_data(True)
    post(client, "/language/en", {"next": "/login"}, page="/login")
    page = client.get("/login").get_data(True)
    assert "Log in" in page and 'lang="en"' in page
    login(client, BERT)
    # Bert's own language (German) wins once he is logged in; he can change it.
    assert "Mein Konto" in client.get("/account").get_data(True)
    post(client, "/account", {"form": "prefs", "prefs-language": "en"})
    assert "My account" in client.get("/account").get_data(True)


def test_cli_create_admin_reads_the_password_from_a_file(tmp_path: Path, sqlite_url: str) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    env = {**os.environ, "MAILGATE_DATABASE__URL": sqlite_url}
    env.pop("MAILGATE_ADMIN_PASSWORD", None)
    env.pop("MAILGATE_CONFIG", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailgate",
            "users",
            "create-admin",
            "--email",
            "Boss@Autohaus.example",
            "--name",
            "Bea Boss",
            "--password-file",
            str(secret),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    weak = tmp_path / "weak"
    weak.write_text("kurz")
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailgate",
            "users",
            "set-password",
            "--email",
            "boss@autohaus.example",
            "--password-file",
            str(weak),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and "too weak" in refused.stderr
    engine = db.create_db_engine(sqlite_url)
    app = web_app(db.make_session_factory(engine))
    client = logged_in(app, "boss@autohaus.example")
    assert client.get("/inbound").status_code == 200
    engine.dispose()
