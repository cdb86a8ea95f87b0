"""The read-only web UI through the Flask test client (both databases) and over real HTTP.

Every lead here is made the real way: the mail is stored with ``store_raw`` and
the pipeline turns it into a lead, so the pages are tested against what the
worker actually writes.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.request
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, Lead, utcnow
from mailgate.webui import create_app
from mailgate.webui.server import WebThread
from mailgate.worker import process_pending

from .mails import LEAD_ADDRESS, bounce, inquiry
from .webui_helpers import ensure_user, logged_in, web_app

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
EXPECTED_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def ingest(factory: sessionmaker[Session], *mails: bytes) -> None:
    for raw in mails:
        store_raw(factory, raw, channel="smtp", envelope_to=[LEAD_ADDRESS])
    process_pending(factory, Settings())


def lead_id_of(factory: sessionmaker[Session], message_id: str) -> int:
    with factory() as session:
        lead_id = session.scalar(
            select(InboundMail.lead_id).where(InboundMail.message_id == message_id)
        )
    assert lead_id is not None, f"no lead was made from {message_id}"
    return lead_id


def inbound_id_of(factory: sessionmaker[Session], message_id: str) -> int:
    with factory() as session:
        found = session.scalar(select(InboundMail.id).where(InboundMail.message_id == message_id))
    assert found is not None
    return found


def html_only(n: int, html: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Portal <noreply@portal.example>"
    msg["To"] = LEAD_ADDRESS
    msg["Subject"] = "Neue Anfrage"
    msg["Message-ID"] = f"<html-{n}@portal.example>"
    msg.set_content(html, subtype="html")
    return msg.as_bytes(policy=policy.SMTP)


@pytest.fixture
def client(dealer: sessionmaker[Session]) -> FlaskClient:
    """Logged in as an admin, who sees every lead and the inbox."""
    ensure_user(dealer, "admin@autohaus.example", "admin")
    return logged_in(web_app(dealer), "admin@autohaus.example")


def page(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, url
    return response.get_data(as_text=True)


def test_list_shows_the_lead_with_customer_and_due_state(
    dealer: sessionmaker[Session], client: FlaskClient
) -> None:
    ingest(dealer, inquiry(1, name="Fritz Fröhlich", message="Gibt es den auch in Blau?"))
    body = page(client, "/leads")
    assert "Fritz Fröhlich" in body and "Anna Schmidt" in body
    assert 'class="badge due due-ok">ok</span>' in body
    # the headers sort the list (a link each), customer name and due date among them
    assert re.search(
        r'<th scope="col"><a href="[^"]*sort=customer[^"]*" class="sort">Kunde</a>', body
    )
    assert re.search(
        r'<th scope="col"><a href="[^"]*sort=due[^"]*" class="sort">Fälligkeit</a>', body
    )


def test_due_state_is_colour_and_text(dealer: sessionmaker[Session], client: FlaskClient) -> None:
    ingest(dealer, inquiry(1, name="Olga Overdue"), inquiry(2, name="Sven Soon"))
    overdue = lead_id_of(dealer, "<inquiry-1@autohaus-web.example>")
    soon = lead_id_of(dealer, "<inquiry-2@autohaus-web.example>")
    now = utcnow()
    with dealer.begin() as session:
        session.execute(
            update(Lead)
            .where(Lead.id == overdue)
            .values(soon_at=now - timedelta(hours=2), overdue_at=now - timedelta(hours=1))
        )
        session.execute(
            update(Lead)
            .where(Lead.id == soon)
            .values(soon_at=now - timedelta(minutes=5), overdue_at=now + timedelta(hours=1))
        )
    body = page(client, "/leads")
    assert 'class="badge due due-overdue">überfällig</span>' in body
    assert 'class="badge due due-soon">bald fällig</span>' in body
    assert "überfällig" in page(client, f"/leads/{overdue}")


def test_detail_shows_customer_vehicle_message_and_protocol(
    dealer: sessionmaker[Session], client: FlaskClient
) -> None:
    ingest(dealer, inquiry(1, name="Fritz Fröhlich", message="Gibt es den auch in Blau?"))
    lead_id = lead_id_of(dealer, "<inquiry-1@autohaus-web.example>")
    body = page(client, f"/leads/{lead_id}")
    assert "Fritz Fröhlich" in body and "kunde1@kunden.example" in body
    assert "Golf 8 GTI" in body and "38.450\xa0€" in body
    assert "Gibt es den auch in Blau?" in body
    # The protocol: time, actor, action and detail (the reason) in German.
    assert '<td data-label="Was">zugewiesen</td>' in body
    assert "an anna@autohaus.example: rollierende Verteilung: als Nächste(r) an der Reihe" in body
    assert re.search(r'<td data-label="Wer"[^>]*>System</td>', body)


def test_dates_are_shown_in_the_dealers_time_zone(
    dealer: sessionmaker[Session], client: FlaskClient
) -> None:
    ingest(dealer, inquiry(1))
    with dealer() as session:
        lead = session.scalars(select(Lead)).one()
        received = lead.received_at
    local = received.astimezone(ZoneInfo("Europe/Berlin")).strftime("%d.%m.%Y %H:%M")
    assert received.utcoffset() == timedelta(0)
    assert f'<td data-label="Eingang">{local}</td>' in page(client, "/leads")


def test_mail_content_is_escaped_everywhere(
    dealer: sessionmaker[Session], client: FlaskClient
) -> None:
    ingest(dealer, inquiry(1, name="Eve <b Bold & Co", message=f"Hallo {SCRIPT} und {IMG}"))
    lead_id = lead_id_of(dealer, "<inquiry-1@autohaus-web.example>")
    inbound_id = inbound_id_of(dealer, "<inquiry-1@autohaus-web.example>")
    for url in ("/leads", f"/leads/{lead_id}", "/inbound", f"/inbound/{inbound_id}"):
        body = page(client, url)
        assert "<script>alert" not in body and "<img src=x" not in body, url
        assert "<b Bold" not in body, url
    detail = page(client, f"/leads/{lead_id}")
    # fields keep the customer's text and are escaped (complete tags are already
    # stripped by the parser's finalize step); the message carries no markup at all
    assert "&lt;b Bold &amp; Co" in detail
    message = detail.split('<pre class="message">', 1)[1].split("</pre>", 1)[0]
    assert "Hallo" in message and "alert" not in message and "&lt;" not in message


def test_inbound_detail_never_renders_a_mails_html(
    dealer: sessionmaker[Session], client: FlaskClient
) -> None:
    html = (
        "<html><body><p>Name: Hanna Html</p><p>E-Mail: hanna@kunden.example</p>"
        f"<p>Nachricht: Bitte um Angebot</p>{SCRIPT}{IMG}<iframe src=x></iframe></body></html>"
    )
    ingest(dealer, html_only(1, html))
    inbound_id = inbound_id_of(dealer, "<html-1@portal.example>")
    body = page(client, f"/inbound/{inbound_id}")
    assert "Bitte um Angebot" in body and "Neue Anfrage" in body  # text and Subject header
    for tag in ("<p>Name", "<script>alert", "<img src=x", "<iframe src=x"):
        assert tag not in body
    # The only frame is our own sandboxed one, pointing at the CSP-guarded HTML route.
    assert body.count("<iframe") == 1
    assert f'<iframe class="mail-html" sandbox src="/inbound/{inbound_id}/original.html"' in body


def test_inbound_detail_of_an_oversized_mail_is_not_parsed(
    dealer: sessionmaker[Session], client: FlaskClient
) -> None:
    raw = b"Subject: huge\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\nbody\r\n"
    stored = store_raw(dealer, raw, channel="smtp")
    assert "nicht angezeigt" in page(client, f"/inbound/{stored.id}")


def test_inbound_list_shows_status_and_reason(
    dealer: sessionmaker[Session], client: FlaskClient
) -> None:
    ingest(dealer, inquiry(1), bounce(1))
    body = page(client, "/inbound")
    assert "verarbeitet" in body and "verworfen" in body
    with dealer() as session:
        reason = session.scalar(
            select(InboundMail.status_reason).where(InboundMail.status == "discarded")
        )
    assert reason and reason.startswith("bounce: ")  # stored in English, for logs and the CLI
    german = f"Unzustellbarkeitsnachricht ({reason.removeprefix('bounce: ')})."
    assert german in body and reason not in body  # shown in the admin's language
    bounce_id = inbound_id_of(dealer, "<bounce-1@mx.autohaus.example>")
    detail = page(client, f"/inbound/{bounce_id}")
    assert "MAILER-DAEMON@mx.autohaus.example" in detail and german in detail


def test_inbound_reasons_in_german_and_unknown_ones_as_stored(
    dealer: sessionmaker[Session],
) -> None:
    from mailgate.webui.inbound_reasons import explain_reason

    with web_app(dealer).test_request_context():
        assert explain_reason("duplicate of lead 12") == (
            "Dublette: Aus dieser Mail wurde bereits Lead 12."
        )
        assert explain_reason("auto-reply: X-Autoreply header") == (
            "Automatische Antwort (X-Autoreply header)."
        )
        assert explain_reason("no lead could be made: no customer contact") == (
            "Kein Lead erstellt: no customer contact"
        )
        trace = "Traceback (most recent call last):\n  File ..."
        assert explain_reason(trace) == trace and explain_reason(None) == ""


def test_unknown_ids_are_404_in_german(client: FlaskClient) -> None:
    for url in ("/leads/999", "/inbound/999", "/nowhere"):
        assert "Diese Seite gibt es nicht." in page(client, url, status=404)


def test_empty_database_pages(client: FlaskClient) -> None:
    assert "Noch keine Anfragen" in page(client, "/leads")
    assert "Noch keine E-Mails" in page(client, "/inbound")


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_a_broken_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite3")
    app = create_app(sessionmaker(engine), Settings())
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
    engine.dispose()


def test_security_headers_on_every_response(
    dealer: sessionmaker[Session], client: FlaskClient
) -> None:
    ingest(dealer, inquiry(1))
    lead_id = lead_id_of(dealer, "<inquiry-1@autohaus-web.example>")
    urls = (
        "/leads",
        f"/leads/{lead_id}",
        "/inbound",
        "/healthz",
        "/leads/999",
        "/static/style.css",
    )
    for url in urls:
        response = client.get(url)
        for name, value in EXPECTED_HEADERS.items():
            assert response.headers.get(name) == value, (url, name)
        response.close()


def test_pagination_newest_first(dealer: sessionmaker[Session], client: FlaskClient) -> None:
    ingest(dealer, *(inquiry(100 + n, name=f"Kunde Nummer{n:02d}") for n in range(55)))
    first, second = page(client, "/leads"), page(client, "/leads?page=2")
    assert "(55)" in first
    assert "Seite 1 von 2" in first and "Seite 2 von 2" in second
    assert first.count('<td data-label="Kunde">') == 50
    assert second.count('<td data-label="Kunde">') == 5
    assert "Nummer54" in first and "Nummer00" not in first
    assert all(f"Nummer{n:02d}" in second for n in range(5))
    assert first.index("Nummer54") < first.index("Nummer53")
    assert 'href="/leads?page=2"' in first and 'href="/leads?page=1"' in second
    # Nonsense page numbers are clamped, never a server error.
    assert "Seite 2 von 2" in page(client, "/leads?page=99999999999999999999999")
    assert "Seite 1 von 2" in page(client, "/leads?page=-3")
    assert "Seite 1 von 2" in page(client, "/leads?page=abc")


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_served_over_http_by_waitress(dealer: sessionmaker[Session]) -> None:
    # port 0: the kernel picks a free port at bind time (no race with other tests)
    web = WebThread(create_app(dealer, Settings()), "127.0.0.1", 0).start()
    port = web.server.effective_port
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            assert json.loads(response.read()) == {"status": "ok", "database": "ok"}
            assert response.headers["Server"] == "mailgate"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        # A browser keeps its connection open; stopping must not wait for it.
        keep_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        keep_alive.request("GET", "/")
        assert keep_alive.getresponse().read()
    finally:
        started = time.monotonic()
        web.stop()
    assert not web.is_alive() and time.monotonic() - started < 3
    keep_alive.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)  # noqa: S310 - the port is closed now
