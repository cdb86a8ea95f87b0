"""Issue 16 item 3: links in mails come only from the one base URL; foreign Host headers
get 400; X-Forwarded-* are believed only from ``[web] trusted_proxies``.

The attack: with no base URL configured, ``/password/forgot`` with ``Host:
attacker.example`` mailed a working reset link for a salesperson's account to the
attacker's host.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from mailgate import db
from mailgate.base_url import adopt_at_start, adopt_legacy_base_url, set_base_url, stored_base_url
from mailgate.config import ConfigError, Settings, WebSettings, load_settings
from mailgate.dealer_settings import (
    SettingsError,
    export_settings,
    import_settings,
    load_dealer_config,
)
from mailgate.doctor import FAIL, OK, WARN, check_base_url
from mailgate.models import DealerSetting, LoginFailure, OutboxMail
from mailgate.webui.hosts import host_allowed, normalise_host

from .conftest import DEALER_TOML
from .webui_helpers import PASSWORD, csrf_token, ensure_user, logged_in, post, web_app

BASE = "https://leads.autohaus.example"
ANNA, ADMIN = "anna@autohaus.example", "admin@autohaus.example"
ATTACKER = "attacker.example"
# Host headers an attacker sends: none may reach a page.
FORGED_HOSTS = (
    ATTACKER,
    f"{ATTACKER}:8025",
    "leads.autohaus.example.attacker.example",
    "localhost.attacker.example",
    "127.0.0.1.attacker.example",
    "evil-leads.autohaus.example",
    "leads.autohaus.example@attacker.example",
    "leads.autohaus.example:80@attacker.example",
    "attacker.example/leads.autohaus.example",
    "[::2]",
    "10.0.0.1",
    "localhost:abc",
    "",
)
GOOD_HOSTS = (
    "leads.autohaus.example",
    "LEADS.Autohaus.Example:443",
    "leads.autohaus.example.",
    "localhost",
    "localhost:8025",
    "127.0.0.1:8025",
    "[::1]:8025",
)


def base_url(factory: sessionmaker[Session], url: str) -> None:
    with db.session_scope(factory) as session:
        set_base_url(session, url)


def reset_mails(factory: sessionmaker[Session]) -> list[str]:
    """The plain-text bodies of every queued reset mail."""
    with factory() as session:
        rows = session.scalars(
            select(OutboxMail).where(OutboxMail.purpose == "password_reset")
        ).all()
    bodies = []
    for row in rows:
        message = email.message_from_bytes(row.raw or b"", policy=email.policy.default)
        bodies.append(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    return bodies


def ask_for_reset(client: FlaskClient, address: str, **environ: str) -> TestResponse:
    token = csrf_token(client, "/login")  # fetched on an allowed host
    return client.post(
        "/password/forgot",
        data={"email": address, "csrf_token": token},
        environ_overrides=environ,
    )


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    ensure_user(dealer, ANNA, "salesperson")
    ensure_user(dealer, ADMIN, "admin")
    return web_app(dealer)


# --- the attack -------------------------------------------------------------------------


@pytest.mark.parametrize("configured", ["", BASE])
def test_a_forged_host_never_reaches_the_reset_mail(
    app: Flask, dealer: sessionmaker[Session], configured: str
) -> None:
    base_url(dealer, configured)
    client = app.test_client()
    for host in FORGED_HOSTS:
        answer = ask_for_reset(client, ANNA, HTTP_HOST=host)
        assert answer.status_code == 400, host
        assert b"<html" not in answer.data  # refused before any page runs
    # X-Forwarded-Host from a peer that is not a trusted proxy is ignored, too.
    ask_for_reset(client, ANNA, HTTP_X_FORWARDED_HOST=ATTACKER, HTTP_FORWARDED=f"host={ATTACKER}")
    bodies = reset_mails(dealer)
    assert not any(ATTACKER in body for body in bodies)
    if configured:
        assert len(bodies) == 1 and f"{BASE}/password/reset/" in bodies[0]
    else:
        assert bodies == []


def test_without_a_base_url_the_reset_request_refuses_clearly(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    client = app.test_client()
    page = client.get("/password/forgot")
    text = page.get_data(as_text=True)
    assert page.status_code == 503
    assert (
        "Passwort-Zurücksetzen ist nicht eingerichtet – bitte wenden Sie sich an die Administration"
        in text
    )
    assert 'name="email"' not in text  # no form that would pretend to send something
    token = csrf_token(client, "/login")
    refused = client.post("/password/forgot", data={"email": ANNA, "csrf_token": token})
    assert refused.status_code == 503 and reset_mails(dealer) == []
    with dealer() as session:  # and it did not count against anybody
        assert session.scalars(select(LoginFailure)).all() == []


def test_the_admin_invite_without_a_base_url_names_the_setting(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    admin = logged_in(app, ADMIN)
    form = {
        "name": "Cora Neu",
        "email": "cora@autohaus.example",
        "role": "salesperson",
        "language": "",
        "supervisor": "",
        "active": "y",
        "receives_leads": "y",
        "can_be_assigned": "y",
        "locations": "",
        "perm_sales": "all",
        "perm_service": "all",
        "perm_financing": "all",
        "send_link": "y",
    }
    refused = post(admin, "/settings/users/new", form)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "base_url" in text and "Einstellungen → Allgemein" in text
    assert reset_mails(dealer) == []
    base_url(dealer, BASE)
    made = post(admin, "/settings/users/new", form)
    assert made.status_code == 302
    (body,) = reset_mails(dealer)
    assert f"{BASE}/password/reset/" in body


def test_admins_see_what_to_set_on_every_page(app: Flask, dealer: sessionmaker[Session]) -> None:
    admin, anna = logged_in(app, ADMIN), logged_in(app, ANNA)
    for path in ("/leads", "/settings/"):
        page = admin.get(path).get_data(as_text=True)
        assert 'id="base-url-missing"' in page and "base_url" in page, path
    assert 'id="base-url-missing"' not in anna.get("/leads").get_data(as_text=True)
    base_url(dealer, BASE)
    assert 'id="base-url-missing"' not in admin.get("/leads").get_data(as_text=True)


def test_the_admin_sets_the_base_url_on_the_general_page(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    admin = logged_in(app, ADMIN)
    form = {
        "from_name": "Autohaus Beispiel Verkauf",
        "send_mails": "y",
        "unassigned_notice_to": "zentrale@autohaus.example",
        "trade_in_cc": "",
        "reply_mode": "relay",
        "language": "de",
        "timezone": "Europe/Berlin",
    }
    new_host = {"HTTP_HOST": "mailgate.autohaus.example"}
    assert admin.get("/login", environ_overrides=new_host).status_code == 400
    for bad in ("mailgate.autohaus.example", "javascript:alert(1)", "https://x.example/?a=b"):
        refused = post(admin, "/settings/", {**form, "base_url": bad})
        page = refused.get_data(as_text=True)
        assert refused.status_code == 200
        assert "Nichts wurde gespeichert" in page, page[-2000:]
        assert "Schreiben Sie die Web-Adresse so: https://leads.autohaus.example." in page
        with dealer() as session:
            assert stored_base_url(session) == ""  # nothing saved
    saved = post(admin, "/settings/", {**form, "base_url": "https://mailgate.autohaus.example"})
    assert saved.status_code == 302
    with dealer() as session:
        assert stored_base_url(session) == "https://mailgate.autohaus.example"
    assert 'id="base-url-missing"' not in admin.get("/leads").get_data(as_text=True)
    # The UI answers to the new name at once (this instance; others within seconds).
    assert admin.get("/login", environ_overrides=new_host).status_code == 200


# --- which hosts the UI answers to ---------------------------------------------------------


def test_allowed_hosts_listen_address_and_base_url_host(dealer: sessionmaker[Session]) -> None:
    ensure_user(dealer, ADMIN, "admin")
    base_url(dealer, BASE)
    app = web_app(
        dealer,
        Settings(web=WebSettings(host="192.0.2.10", allowed_hosts=("mailgate.intern.example",))),
    )
    client = app.test_client()
    for host in (*GOOD_HOSTS, "192.0.2.10:8025", "mailgate.intern.example"):
        assert client.get("/login", environ_overrides={"HTTP_HOST": host}).status_code == 200, host
    for host in FORGED_HOSTS:
        response = client.get("/login", environ_overrides={"HTTP_HOST": host})
        assert response.status_code == 400, host
        assert response.mimetype == "text/plain"
    # Static files and errors too: nothing answers to a foreign name; the health probe does.
    for path in ("/static/style.css", "/no-such-page", "/api/v1/leads"):
        assert client.get(path, environ_overrides={"HTTP_HOST": ATTACKER}).status_code == 400
    assert client.get("/healthz", environ_overrides={"HTTP_HOST": "10.1.2.3"}).status_code == 200


def test_a_subdomain_entry_and_ipv6_literals(dealer: sessionmaker[Session]) -> None:
    ensure_user(dealer, ADMIN, "admin")
    app = web_app(dealer, Settings(web=WebSettings(allowed_hosts=(".intern.example",))))
    client = app.test_client()
    for host, status in (
        ("a.intern.example", 200),
        ("intern.example", 200),
        ("xintern.example", 400),
        ("[::1]", 200),
        ("[0:0::1]:80", 200),
        ("[::1", 400),
        ("[::1]x", 400),
    ):
        got = client.get("/login", environ_overrides={"HTTP_HOST": host}).status_code
        assert got == status, host


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_only_the_listed_names_are_allowed(host: str) -> None:
    allowed = {"leads.autohaus.example", "127.0.0.1", "::1"}
    if host_allowed(host, allowed):
        assert normalise_host(host) in allowed


# --- trusted proxies -----------------------------------------------------------------------


def proxied_app(factory: sessionmaker[Session], proxies: tuple[str, ...]) -> Flask:
    ensure_user(factory, ADMIN, "admin")
    base_url(factory, BASE)
    return web_app(factory, Settings(web=WebSettings(trusted_proxies=proxies)))


def failed_login(app: Flask, peer: str, **headers: str) -> None:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = peer
    environ = {"HTTP_HOST": "leads.autohaus.example", **headers}
    token = csrf_token_on(client, environ)
    client.post(
        "/login",
        data={"email": ANNA, "password": "falsch-falsch", "csrf_token": token},
        environ_overrides=environ,
    )


def csrf_token_on(client: FlaskClient, environ: dict[str, str]) -> str:
    import re

    page = client.get("/login", environ_overrides=environ).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, page[:300]
    return match.group(1)


def recorded_addresses(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(LoginFailure.ip).order_by(LoginFailure.id)))


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    dealer: sessionmaker[Session],
) -> None:
    ensure_user(dealer, ANNA, "salesperson")
    app = proxied_app(dealer, ("10.0.0.1", "10.9.0.0/16"))
    # A client talking to mailgate directly picks no address of its own.
    failed_login(app, "203.0.113.5", HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_REAL_IP="1.2.3.4")
    # Through the trusted proxy: the address the proxy saw (nginx appends $remote_addr).
    failed_login(app, "10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    # A client's own X-Forwarded-For entry in front of the proxy's is not believed.
    failed_login(app, "10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.8")
    # Two trusted proxies in a row: one hop per trusted proxy.
    failed_login(app, "10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.9, 10.9.1.2")
    assert recorded_addresses(dealer) == [
        "203.0.113.5",
        "198.51.100.7",
        "198.51.100.8",
        "198.51.100.9",
    ]


def test_forwarded_host_is_believed_only_from_a_trusted_proxy(
    dealer: sessionmaker[Session],
) -> None:
    app = proxied_app(dealer, ("10.0.0.1",))
    client = app.test_client()
    behind = {"HTTP_HOST": "10.0.0.1:8025", "HTTP_X_FORWARDED_HOST": "leads.autohaus.example"}
    # The proxy connects by its own address; what the browser asked for is in the header.
    client.environ_base["REMOTE_ADDR"] = "10.0.0.1"
    assert client.get("/login", environ_overrides=behind).status_code == 200
    forged = {**behind, "HTTP_X_FORWARDED_HOST": ATTACKER}
    assert client.get("/login", environ_overrides=forged).status_code == 400
    # The same headers from anybody else: X-Forwarded-Host is dropped, the Host is foreign.
    client.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert client.get("/login", environ_overrides=behind).status_code == 400


def test_the_session_cookie_is_secure_with_an_https_base_url(
    dealer: sessionmaker[Session],
) -> None:
    ensure_user(dealer, ANNA, "salesperson")
    ensure_user(dealer, ADMIN, "admin")
    public = "leads.autohaus.example"
    for configured, host, proto, secure in (
        ("", "localhost", "", False),
        ("", "localhost", "https", False),  # X-Forwarded-Proto from an untrusted peer: nothing
        ("http://127.0.0.1:8025", "localhost", "", False),
        (BASE, public, "", True),  # the public name: Secure even if the last hop is plain
        # An operator on the server over plain http to the loopback name: a Secure cookie
        # would be dropped by the browser (every form then fails CSRF); scoped to
        # 127.0.0.1 it can never reach the public host.
        (BASE, "127.0.0.1:8025", "", False),
    ):
        base_url(dealer, configured)
        client = web_app(dealer).test_client()
        environ = {"HTTP_HOST": host, **({"HTTP_X_FORWARDED_PROTO": proto} if proto else {})}
        page = client.get("/login", environ_overrides=environ).get_data(True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token, page[:300]
        response = client.post(
            "/login",
            data={"email": ANNA, "password": PASSWORD, "csrf_token": token.group(1)},
            environ_overrides=environ,
        )
        assert response.status_code == 302
        cookies = [c for c in response.headers.getlist("Set-Cookie")]
        assert cookies and all(("Secure" in c) is secure for c in cookies), (configured, cookies)


# --- one setting: the dealer's base_url -----------------------------------------------------


def test_legacy_web_base_url_is_copied_once_then_the_dealers_wins(
    dealer: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    legacy = Settings(web=WebSettings(base_url="https://alt.autohaus.example/"))
    caplog.set_level(logging.WARNING, logger="mailgate.config")
    adopt_at_start(dealer, legacy)
    with dealer() as session:
        assert stored_base_url(session) == "https://alt.autohaus.example"
        config = load_dealer_config(session)
        assert config.base_url == "https://alt.autohaus.example"
        assert config.name == "Autohaus Beispiel"  # the rest of [dealer] is kept
    assert "deprecated" in caplog.text and "[dealer]" in caplog.text
    assert 'base_url = "https://alt.autohaus.example"' in export_settings_text(dealer)
    # Both set and different: the dealer's stays, with a warning.
    caplog.clear()
    base_url(dealer, BASE)
    with db.session_scope(dealer) as session:
        assert adopt_legacy_base_url(session, "https://alt.autohaus.example") == BASE
    assert "differs" in caplog.text
    with dealer() as session:
        assert stored_base_url(session) == BASE


def test_legacy_base_url_on_a_fresh_database(factory: sessionmaker[Session]) -> None:
    adopt_at_start(factory, Settings(web=WebSettings(base_url=BASE)))
    with factory() as session:
        assert load_dealer_config(session).base_url == BASE
        assert session.get(DealerSetting, "dealer") is not None
    # A later import describes the dealership completely, base_url included.
    with db.session_scope(factory) as session:
        import_settings(
            session, DEALER_TOML.replace("[dealer]\n", f'[dealer]\nbase_url = "{BASE}"\n')
        )
    with factory() as session:
        assert load_dealer_config(session).base_url == BASE


def export_settings_text(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        return export_settings(session)


@pytest.mark.parametrize(
    "value",
    [
        "leads.autohaus.example",
        "javascript:alert(1)",
        "ftp://leads.autohaus.example",
        "https://",
        "https://leads.autohaus.example/?next=x",
        "https://user@leads.autohaus.example",
        "https://leads.autohaus.example#x",
        "https://leads.autohaus.example:99999",
    ],
)
def test_the_dealer_base_url_must_be_a_plain_http_url(
    factory: sessionmaker[Session], value: str
) -> None:
    text = DEALER_TOML.replace("[dealer]\n", f'[dealer]\nbase_url = "{value}"\n')
    with db.session_scope(factory) as session, pytest.raises(SettingsError, match="base_url"):
        import_settings(session, text)


def test_a_bad_stored_base_url_counts_as_unset_and_the_doctor_says_so(
    dealer: sessionmaker[Session],
) -> None:
    base_url(dealer, "leads.autohaus.example")  # stored before there was validation
    with dealer() as session:
        assert load_dealer_config(session).base_url == ""  # no failing load, no links
    (finding,) = check_base_url(dealer)
    assert finding.status == FAIL and "leads.autohaus.example" in finding.detail


def test_doctor_names_the_setting(dealer: sessionmaker[Session]) -> None:
    (missing,) = check_base_url(dealer)
    assert missing.status == WARN and "password reset" in missing.detail
    assert "base_url" in missing.fix and "[dealer]" in missing.fix
    legacy, missing = check_base_url(dealer, "https://alt.example")
    assert legacy.status == WARN and "deprecated" in legacy.detail
    base_url(dealer, "http://leads.autohaus.example")
    (plain,) = check_base_url(dealer)
    assert plain.status == WARN and "https" in plain.fix
    base_url(dealer, BASE)
    (good,) = check_base_url(dealer)
    assert good.status == OK and BASE in good.detail


# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[web]\ntrusted_proxies = ["nginx"]', {}, "'nginx' is not an IP address or network"),
        ('[web]\ntrusted_proxies = ["10.0.0.1/33"]', {}, "'10.0.0.1/33' is not an IP address"),
        ('[web]\ntrusted_proxies = ["0.0.0.0/0"]', {}, "would trust every address"),
        ('[web]\ntrusted_proxies = ["::/0"]', {}, "would trust every address"),
        ("[web]\ntrusted_proxies = [1, 2]", {}, "[web] trusted_proxies must be a list of strings"),
        ("", {"MAILGATE_WEB__TRUSTED_PROXIES": "10.0.0.1,, x"}, "'x' is not an IP address"),
        ('[web]\nallowed_hosts = ["https://x.example"]', {}, "is not a host name"),
        ('[web]\nallowed_hosts = ["x.example:8025"]', {}, "is not a host name"),
        ('[web]\nbase_url = "leads.autohaus.example"', {}, "[web] base_url must start with"),
    ],
)
def test_web_config_garbage_is_refused_clearly(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "m.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(str(config), environ=env)
    assert message in str(raised.value)


def test_web_config_lists_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text('[web]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8"]\n')
    assert load_settings(str(config), environ={}).web.trusted_proxies == (
        "127.0.0.1",
        "10.0.0.0/8",
    )
    env = {"MAILGATE_WEB__ALLOWED_HOSTS": "a.example, .b.example"}
    assert load_settings(str(config), environ=env).web.allowed_hosts == ("a.example", ".b.example")
