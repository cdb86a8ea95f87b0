"""Set-up in the browser (issue 21, item 2 and finding 1): every dealer setting a newcomer
needs on the general page, the set-up checklist with the relay's test mail, invitations,
and the system page — and the attacker's side of each (roles, CSRF, junk in the lead
address field, header injection, reused or expired invitation links, a forged Host).

The newcomer's whole path through a running ``mailgate serve`` is in
``tests/test_first_installation_browser.py``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from flask import Flask, render_template
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import RelaySettings, Settings, SmtpSettings, WebSettings
from mailgate.dealer_settings import apply_document, load_dealer_config, stored_document
from mailgate.models import ImapState, InboundMail, OutboxMail, User, utcnow
from mailgate.webui.accounts import invitations
from mailgate.webui.settings.general import parse_addresses

from .conftest import free_port
from .test_sender import Sink
from .webui_helpers import PASSWORD, csrf_token, ensure_user, logged_in, post, web_app

ADMIN = "ada@autohaus.example"
SALES = "sam@autohaus.example"
BOSS = "bea@autohaus.example"
BASE = "https://leads.autohaus.example"
NEW_ROUTES = (
    ("GET", "/setup/checklist"),
    ("POST", "/setup/test-mail"),
    ("GET", "/setup/invite"),
    ("POST", "/setup/invite"),
    ("GET", "/system/"),
    ("GET", "/system/doctor"),
    ("GET", "/settings/"),
    ("POST", "/settings/"),
)


def _app(factory: sessionmaker[Session], **settings: object) -> Flask:
    return web_app(factory, replace(Settings(), **settings))  # type: ignore[arg-type]


@pytest.fixture
def fresh(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """A database as after the set-up page: one admin, no dealer settings at all."""
    ensure_user(factory, ADMIN, "admin", name="Ada Admin", receives_leads=False)
    return factory


def general_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "Autohaus Muster",
        "addresses": "anfragen@muster.example\nverkauf@muster.example",
        "admin_address": "it@muster.example",
        "country": "DE",
        "from_name": "",
        "unassigned_notice_to": "",
        "trade_in_cc": "",
        "reply_mode": "relay",
        "language": "de",
        "timezone": "Europe/Berlin",
        "base_url": BASE,
        "send_mails": "y",
    }
    form.update(changes)
    return form


def _dealer(factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    with factory() as session:
        return load_dealer_config(session)


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


# --- the general page --------------------------------------------------------------------------


def test_general_page_edits_every_dealer_key_a_newcomer_needs(fresh: sessionmaker[Session]) -> None:
    app = _app(fresh, web=WebSettings(host="127.0.0.1", port=8123))
    client = logged_in(app, ADMIN)
    page = _text(client.get("/settings/"))
    # the base URL is suggested from the configured web listener, and not yet stored
    assert 'value="http://127.0.0.1:8123"' in page
    assert _dealer(fresh).base_url == ""
    # the forwarding target names the SMTP listener
    assert "Leiten Sie Anfragen an diese Adressen an mailgate weiter" in page
    assert "Port 2525" in page
    # a filtered time-zone picker: an input with a datalist, European zones first
    assert '<select id="timezone"' not in page and 'list="timezone-options"' in page
    options = re.findall(r'<option value="([^"]+)"></option>', page)
    assert options[:3] == ["Europe/Berlin", "Europe/Vienna", "Europe/Zurich"]
    answer = post(
        client,
        "/settings/",
        general_form(country="AT", timezone="Europe/Vienna", addresses="Anfragen@Muster.example"),
    )
    assert answer.status_code == 302, _text(answer)
    dealer = _dealer(fresh)
    assert dealer.name == "Autohaus Muster"
    assert dealer.addresses == ("anfragen@muster.example",)
    assert dealer.admin_address == "it@muster.example"
    assert dealer.country == "AT" and dealer.timezone.key == "Europe/Vienna"
    assert dealer.base_url == BASE
    page = _text(client.get("/settings/"))
    assert "Vorschlag" not in page and f'value="{BASE}"' in page


def test_a_forged_host_header_is_no_base_url_suggestion(fresh: sessionmaker[Session]) -> None:
    app = _app(fresh, web=WebSettings(port=8123, allowed_hosts=("evil.example",)))
    forged = app.test_client()
    forged.environ_base["HTTP_HOST"] = "evil.example"
    assert post(forged, "/login", {"email": ADMIN, "password": PASSWORD}).status_code == 302
    page = _text(forged.get("/settings/"))
    assert 'value="http://127.0.0.1:8123"' in page and "evil.example" not in page
    checklist = _text(forged.get("/setup/checklist"))
    assert "http://127.0.0.1:8123" in checklist and "evil.example" not in checklist


@pytest.mark.parametrize(
    "junk",
    [
        "a@b.example\r\nBcc: x@evil.example",
        "a@b.example\nBcc: x@evil.example",
        "kein-adresse",
        "Verkauf <verkauf@muster.example>",
        "verkauf+tag@muster.example",
        "<script>alert(1)</script>@muster.example",
        "a@b.example%0d%0aBcc:x",
        "x" * 300 + "@muster.example",
    ],
)
def test_lead_address_field_refuses_junk_and_header_injection(
    fresh: sessionmaker[Session], junk: str
) -> None:
    client = logged_in(_app(fresh), ADMIN)
    answer = post(client, "/settings/", general_form(addresses=junk))
    page = _text(answer)
    assert answer.status_code == 200
    assert "Nichts wurde gespeichert" in page
    assert "Keine reine E-Mail-Adresse" in page
    assert "<script>alert(1)</script>" not in page  # shown escaped, if at all
    assert _dealer(fresh).addresses == ()  # nothing stored, not even the good part
    assert _dealer(fresh).name == ""


def test_parse_addresses_takes_every_line_on_its_own() -> None:
    found, refused = parse_addresses("A@b.example, c@d.example;\r\nBcc: x\n\na@b.example")
    assert found == ["a@b.example", "c@d.example"]
    assert refused == ["Bcc: x"]


def test_huge_and_hostile_values_get_a_german_error_not_a_500(fresh: sessionmaker[Session]) -> None:
    client = logged_in(_app(fresh), ADMIN)
    for form in (
        general_form(timezone="../../../etc/passwd"),
        general_form(timezone="Mars/Olympus"),
        general_form(addresses="a@b.example\n" * 20_000),
        general_form(name="N" * 5000),
        general_form(base_url="javascript:alert(1)"),
        general_form(admin_address="it@muster.example\r\nBcc: x@evil.example"),
        general_form(country="XX"),
    ):
        answer = post(client, "/settings/", form)
        assert answer.status_code in (200, 400), answer.status_code
        assert "Nichts wurde gespeichert" in _text(answer) or answer.status_code == 400
    assert _dealer(fresh).name == ""


def test_dealer_name_is_escaped_everywhere(fresh: sessionmaker[Session]) -> None:
    client = logged_in(_app(fresh), ADMIN)
    name = '<img src=x onerror="alert(1)">Autohaus'
    assert post(client, "/settings/", general_form(name=name)).status_code == 302
    for page in ("/settings/", "/setup/checklist"):
        text = _text(client.get(page))
        assert "<img src=x" not in text and "&lt;img src=x" in text


# --- the checklist ---------------------------------------------------------------------------


def _badge(page: str, step_id: str) -> str:
    block = page.split(f'id="{step_id}"', 1)[1].split("</li>", 1)[0]
    match = re.search(r'<span class="badge[^"]*">([^<]+)</span>', block)
    assert match, step_id
    return match.group(1)


def test_checklist_follows_the_real_state(fresh: sessionmaker[Session]) -> None:
    client = logged_in(_app(fresh, relay=RelaySettings(host="")), ADMIN)
    page = _text(client.get("/setup/checklist"))
    for step in ("step-dealer_name", "step-addresses", "step-base_url", "relay", "first-mail"):
        assert _badge(page, step) == "offen – erforderlich", step
    assert _badge(page, "step-hours") == "offen – empfohlen"
    assert "6 Schritte fehlen noch" in page
    post(client, "/settings/", general_form())
    page = _text(client.get("/setup/checklist"))
    for step in ("step-dealer_name", "step-addresses", "step-admin_address", "step-base_url"):
        assert _badge(page, step) == "erledigt", step
    assert _badge(page, "relay") == "offen – erforderlich"  # no relay configured
    assert "anfragen@muster.example, verkauf@muster.example" in page


def test_banner_template_shows_open_steps_to_admins_only(fresh: sessionmaker[Session]) -> None:
    ensure_user(fresh, SALES, "salesperson")
    app = _app(fresh)
    # the frame includes setup_banner.html; a bare page including it stands in for the frame
    app.add_url_rule("/_banner", "banner", lambda: render_template("setup_banner.html"))
    admin, sales = logged_in(app, ADMIN), logged_in(app, SALES)
    banner = _text(admin.get("/_banner"))
    assert 'id="setup-banner"' in banner and "6 Schritte sind noch offen" in banner
    assert 'href="/setup/checklist"' in banner
    assert 'id="setup-banner"' not in _text(sales.get("/_banner"))
    assert 'id="setup-banner"' not in _text(app.test_client().get("/_banner"))
    post(admin, "/settings/", general_form())
    assert "2 Schritte sind noch offen" in _text(admin.get("/_banner"))  # relay, first mail


# --- the relay's test mail -------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_test_mail_goes_through_the_relay_to_the_admin(
    fresh: sessionmaker[Session], sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    app = _app(fresh, relay=RelaySettings(host="127.0.0.1", port=port, timeout=5))
    client = logged_in(app, ADMIN)
    post(client, "/settings/", general_form())
    page = _text(client.get("/setup/checklist"))
    assert f"127.0.0.1:{port}" in page and _badge(page, "relay") == "erledigt"
    answer = post(client, "/setup/test-mail", page="/setup/checklist")
    assert answer.status_code == 302
    shown = _text(client.get("/setup/checklist"))
    assert "Testmail an it@muster.example über 127.0.0.1:" in shown
    assert len(handler.received) == 1
    mail_from, rcpts, raw = handler.received[0]
    assert rcpts == ["it@muster.example"] and mail_from == "anfragen@muster.example"
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Testmail von mailgate – Autohaus Muster"
    assert "über den eingestellten Mailserver" in message.get_body(("plain",)).get_content()


def test_test_mail_failure_is_reported_in_german(fresh: sessionmaker[Session]) -> None:
    closed = free_port()  # nothing listens here
    app = _app(fresh, relay=RelaySettings(host="127.0.0.1", port=closed, timeout=2))
    client = logged_in(app, ADMIN)
    post(client, "/setup/test-mail", page="/setup/checklist")
    page = _text(client.get("/setup/checklist"))
    assert f"konnte nicht über 127.0.0.1:{closed} verschickt werden" in page
    assert "Der Mailserver ist nicht erreichbar" in page
    # a relay that refuses the recipient: the relay's answer in plain words
    handler = Sink()
    handler.replies = ["550 5.7.1 relaying denied"]
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app = _app(fresh, relay=RelaySettings(host="127.0.0.1", port=port, timeout=5))
        client = logged_in(app, ADMIN)
        post(client, "/setup/test-mail", page="/setup/checklist")
        page = _text(client.get("/setup/checklist"))
    finally:
        controller.stop()
    assert "Der Mailserver hat die Mail abgelehnt" in page
    assert "Seine Antwort: 550 5.7.1 relaying denied" in page, re.findall(
        r"Die Testmail[^<]*", page
    )
    assert handler.received == []


def test_test_mail_without_relay_says_what_to_set(fresh: sessionmaker[Session]) -> None:
    client = logged_in(_app(fresh), ADMIN)
    post(client, "/setup/test-mail", page="/setup/checklist")
    page = _text(client.get("/setup/checklist"))
    assert "Kein Mailserver für ausgehende Mail eingestellt" in page and "[relay]" in page


# --- invitations ----------------------------------------------------------------------------


def _invite(client: FlaskClient, name: str, email: str, role: str = "salesperson"):  # type: ignore[no-untyped-def]
    return post(client, "/setup/invite", {"name": name, "email": email, "role": role})


def _invitation_link(factory: sessionmaker[Session], email: str) -> str:
    with factory() as session:
        rows = session.scalars(select(OutboxMail).where(OutboxMail.purpose == "invitation"))
        row = next((r for r in rows if email in r.recipients), None)
        assert row is not None and row.raw is not None
        text = message_from_bytes(row.raw, policy=policy.default).get_body(("plain",))
        found = re.search(r"(https?://\S+/invite/\S+)", text.get_content())
    assert found, "no link in the invitation"
    return found.group(1)


def test_invitation_sets_a_password_once(fresh: sessionmaker[Session]) -> None:
    app = _app(fresh, web=WebSettings(allowed_hosts=("evil.example",)))
    admin = logged_in(app, ADMIN)
    assert post(admin, "/settings/", general_form()).status_code == 302
    # the admin reaches the UI under another name than the base URL's (an allowed host):
    # the link in the mail still comes from the base URL, never from the Host header
    forged = app.test_client()
    forged.environ_base["HTTP_HOST"] = "evil.example"
    logged_in_forged = post(forged, "/login", {"email": ADMIN, "password": PASSWORD})
    assert logged_in_forged.status_code == 302
    answer = _invite(forged, "Lena Neu", "lena@muster.example")
    assert answer.status_code == 302, _text(answer)
    link = _invitation_link(fresh, "lena@muster.example")
    assert link.startswith(f"{BASE}/invite/") and "evil.example" not in link
    with fresh() as session:
        lena = session.scalar(select(User).where(User.email == "lena@muster.example"))
        assert lena is not None and lena.role == "salesperson" and lena.receives_leads
        assert lena.password_hash is None
    path = link.removeprefix(BASE)
    visitor = app.test_client()
    page = visitor.get(path)
    assert page.status_code == 200 and "Lena Neu" in _text(page)
    forged = visitor.post(path, data={"password": PASSWORD, "confirm": PASSWORD})
    assert forged.status_code == 400  # no CSRF token: refused, the password stays unset
    with fresh() as session:
        assert session.scalar(select(User.password_hash).where(User.id == lena.id)) is None
    weak = post(visitor, path, {"password": "kurz", "confirm": "kurz"})
    assert weak.status_code == 200  # too short: the form again
    done = post(visitor, path, {"password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    logged_in(app, "lena@muster.example")  # the password works
    # single use: the same link again is refused, GET and POST
    assert visitor.get(path).status_code == 410
    other = "anderes-Pferd-43"
    again = post(visitor, path, {"password": other, "confirm": other}, page="/login")
    assert again.status_code == 410
    logged_in(app, "lena@muster.example")  # still the first password


def test_invitation_link_expires_and_cannot_be_forged(fresh: sessionmaker[Session]) -> None:
    app = _app(fresh)
    admin = logged_in(app, ADMIN)
    post(admin, "/settings/", general_form())
    _invite(admin, "Olaf Alt", "olaf@muster.example")
    with fresh() as session:
        olaf = session.scalar(select(User).where(User.email == "olaf@muster.example"))
        assert olaf is not None
        secret = str(app.secret_key)
        eight_days_ago = int(time.time()) - 8 * 24 * 3600
        expired = invitations.make_token(secret, olaf, issued_at=eight_days_ago)
        six_days_ago = invitations.make_token(secret, olaf, issued_at=eight_days_ago + 2 * 86400)
        other_key = invitations.make_token("not-the-secret", olaf)
        from mailgate.webui.accounts.reset import make_token as reset_token

        reset = reset_token(secret, olaf)
    visitor = app.test_client()
    assert visitor.get(f"/invite/{six_days_ago}").status_code == 200
    for bad in (expired, other_key, reset, "x" * 5000, "abc.def.ghi", six_days_ago + "x"):
        answer = visitor.get(f"/invite/{bad}")
        assert answer.status_code == 410, bad[:40]
        assert "abgelaufen" in _text(answer)


def test_invitation_needs_a_base_url_and_refuses_duplicates(fresh: sessionmaker[Session]) -> None:
    admin = logged_in(_app(fresh), ADMIN)
    page = _text(_invite(admin, "Lena Neu", "lena@muster.example"))
    assert "Webadresse" in page
    with fresh() as session:
        assert session.scalar(select(func.count(User.id))) == 1  # nobody created
    post(admin, "/settings/", general_form())
    assert _invite(admin, "Lena Neu", "lena@muster.example").status_code == 302
    again = _invite(admin, "Lena Zwei", "LENA@muster.example")
    assert again.status_code == 200 and "existiert bereits" in _text(again)
    hostile = _invite(admin, "<script>alert(1)</script>", "x@muster.example")
    assert hostile.status_code == 302
    listing = _text(admin.get("/setup/invite"))
    assert "<script>alert(1)</script>" not in listing and "&lt;script&gt;" in listing


# --- roles and CSRF ----------------------------------------------------------------------------


def test_every_new_route_is_for_admins_only(fresh: sessionmaker[Session]) -> None:
    ensure_user(fresh, SALES, "salesperson")
    ensure_user(fresh, BOSS, "supervisor")
    app = _app(fresh)
    admin = logged_in(app, ADMIN)
    for email in (SALES, BOSS):
        client = logged_in(app, email)
        token = csrf_token(client, "/account")
        for method, path in NEW_ROUTES:
            data = {"csrf_token": token, "name": "X", "email": "x@muster.example", "role": "admin"}
            answer = client.open(path, method=method, data=data if method == "POST" else None)
            assert answer.status_code == 403, (email, method, path, answer.status_code)
    with fresh() as session:  # the salesperson's invitation of an admin made nobody
        assert session.scalar(select(func.count(User.id))) == 3
    anonymous = app.test_client()
    for method, path in NEW_ROUTES:
        answer = anonymous.open(path, method=method)
        assert answer.status_code in (302, 400), (method, path)
        if answer.status_code == 302:
            assert "/login" in answer.headers["Location"]
    for method, path in NEW_ROUTES:
        if method == "POST":  # an admin without the CSRF token: refused, nothing done
            answer = admin.post(path, data={"name": "X", "email": "y@muster.example"})
            assert answer.status_code == 400, path
    with fresh() as session:
        assert session.scalar(select(func.count(User.id))) == 3


# --- the system page ---------------------------------------------------------------------------


@pytest.fixture
def greeter() -> Iterator[int]:
    """A listener that greets like an SMTP server (what the probe connects to)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"220 test ESMTP mailgate\r\n")
                try:
                    conn.recv(64)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join(2)
    server.close()


def test_system_page_shows_listener_relay_mail_and_queues(
    fresh: sessionmaker[Session], greeter: int, sink: tuple[Sink, int]
) -> None:
    _, relay_port = sink
    app = _app(
        fresh,
        smtp=SmtpSettings(host="127.0.0.1", port=greeter),
        relay=RelaySettings(host="127.0.0.1", port=relay_port, timeout=5),
    )
    client = logged_in(app, ADMIN)
    page = _text(client.get("/system/"))
    listener = page.split('id="listener"', 1)[1].split("</section>", 1)[0]
    assert "läuft" in listener and f"127.0.0.1:{greeter}" in listener
    relay = page.split('id="relay"', 1)[1].split("</section>", 1)[0]
    assert "erreichbar" in relay and "nicht erreichbar" not in relay
    assert "Noch keine Mail eingegangen" in page
    with db.session_scope(fresh) as session:
        session.add(
            InboundMail(
                channel="imap",
                mailbox="filiale-nord",
                envelope_from="kunde@kunden.example",
                envelope_to=["anfragen@muster.example"],
                size=10,
                sha256="0" * 64,
                status="failed",
            )
        )
        session.add(
            OutboxMail(
                idempotency_key="dead-1",
                purpose="notification",
                mail_from="anfragen@muster.example",
                recipients=["x@muster.example"],
                message_id="<d@x>",
                status="dead",
            )
        )
    with db.session_scope(fresh) as session:
        document = stored_document(session)
        mailbox = {"host": "imap.muster.example", "username": "leads", "password": "Geheim-1"}
        document["imap"] = [
            {**mailbox, "name": "filiale-nord"},
            {**mailbox, "name": "filiale-sued"},
            {**mailbox, "name": "archiv", "enabled": False},
        ]
        apply_document(session, document)
        now = utcnow()
        session.add(ImapState(mailbox="filiale-nord", folder="INBOX", last_success_at=now))
        session.add(
            ImapState(
                mailbox="filiale-sued",
                folder="INBOX",
                last_success_at=now - timedelta(hours=2),
                last_error="LOGIN failed",
                last_error_at=now,
            )
        )
    page = _text(client.get("/system/"))
    assert "aus Postfach filiale-nord" in page and "kunde@kunden.example" in page
    boxes = page.split('id="mailboxes"', 1)[1].split("</section>", 1)[0]
    rows = {
        name: boxes.split(f"<td>{name}</td>", 1)[1].split("</tr>", 1)[0]
        for name in ("filiale-nord", "filiale-sued", "archiv")
    }
    assert "holt ab" in rows["filiale-nord"]
    assert "Fehler" in rows["filiale-sued"] and "Prüfen Sie Server" in rows["filiale-sued"]
    assert "ausgeschaltet" in rows["archiv"]
    queues = page.split('id="queues"', 1)[1].split("</section>", 1)[0]
    assert queues.count("ansehen") == 2
    # a listener that is down and a relay that is not reachable
    down = _app(
        fresh,
        smtp=SmtpSettings(host="127.0.0.1", port=free_port()),
        relay=RelaySettings(host="127.0.0.1", port=free_port(), timeout=2),
    )
    page = _text(logged_in(down, ADMIN).get("/system/"))
    listener = page.split('id="listener"', 1)[1].split("</section>", 1)[0]
    relay = page.split('id="relay"', 1)[1].split("</section>", 1)[0]
    assert "nicht erreichbar" in listener and "mailgate serve" in listener
    assert "nicht erreichbar" in relay and "Firewall" in relay


def test_doctor_findings_in_german(fresh: sessionmaker[Session]) -> None:
    client = logged_in(_app(fresh), ADMIN)
    fragment = _text(client.get("/system/doctor", headers={"HX-Request": "true"}))
    assert "<html" not in fragment
    assert "Lead-Adressen" in fragment and "Keine Lead-Adresse" in fragment
    assert "Was ist zu tun:" in fragment
    full = _text(client.get("/system/doctor"))
    assert "<html" in full and "Alle Prüfungen" in full
