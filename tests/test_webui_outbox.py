"""Outbox / delivery log: admin only, plain-word errors, filter, resend of failed mails."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.models import OutboxMail, ProtocolEntry
from mailgate.webui.outbox import plain_error

from .test_webui_accounts import add_lead
from .webui_helpers import csrf_token, ensure_user, logged_in, post, web_app

ADMIN, ANNA = "admin@autohaus.example", "anna@autohaus.example"


def add_mail(
    factory: sessionmaker[Session], n: int, status: str, error: str | None = None, **values: object
) -> int:
    with db.session_scope(factory) as session:
        mail = OutboxMail(
            idempotency_key=f"test:{n}",
            purpose="notification",
            mail_from="leads@autohaus.example",
            recipients=[f"person{n}@kunden.example"],
            subject=values.pop("subject", f"Betreff {n}"),
            message_id=f"<test-{n}@autohaus.example>",
            raw=values.pop("raw", b"From: leads@autohaus.example\r\nSubject: Betreff\r\n\r\nText"),
            status=status,
            attempts=5 if status == "dead" else 0,
            last_error=error,
            **values,
        )
        session.add(mail)
        session.flush()
        return mail.id


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    ensure_user(dealer, ADMIN, "admin")
    ensure_user(dealer, ANNA, "salesperson")
    return web_app(dealer)


def test_plain_words_for_smtp_errors() -> None:
    assert plain_error("gave up after 5 attempts: 550 5.1.1 <x@y.example>: user unknown") == (
        "The recipient address does not exist."
    )
    assert plain_error("452 4.2.2 mailbox full") == "The recipient's mailbox is full."
    assert plain_error("[Errno 111] Connection refused") == "Our mail server could not be reached."
    assert plain_error("421 4.7.0 try again later") != ""
    assert plain_error("something nobody foresaw") == "" and plain_error(None) == ""


def test_admin_lists_mails_with_status_errors_and_filter(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    add_mail(dealer, 1, "sent")
    add_mail(dealer, 2, "dead", "gave up after 5 attempts: 550 5.1.1 user unknown")
    client = logged_in(app, ADMIN)
    html = client.get("/outbox").get_data(as_text=True)
    assert "person1@kunden.example" in html and "person2@kunden.example" in html
    assert "Die Empfängeradresse existiert nicht." in html and "endgültig fehlgeschlagen" in html
    dead_only = client.get("/outbox?status=dead").get_data(as_text=True)
    assert "person2@kunden.example" in dead_only and "person1@kunden.example" not in dead_only
    assert client.get("/outbox?status=bogus").status_code == 200  # unknown filter: all


def test_outbox_is_admin_only(app: Flask, dealer: sessionmaker[Session]) -> None:
    mail = add_mail(dealer, 1, "dead", "550 5.1.1 unknown")
    anna = logged_in(app, ANNA)
    assert anna.get("/outbox").status_code == 403
    assert anna.get(f"/outbox/{mail}").status_code == 403
    token = csrf_token(anna, "/account")
    assert anna.post(f"/outbox/{mail}/resend", data={"csrf_token": token}).status_code == 403
    assert app.test_client().get("/outbox").status_code == 302
    with dealer() as session:
        assert session.get(OutboxMail, mail).status == "dead"


def test_resend_puts_a_dead_mail_back_in_the_queue(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    lead = add_lead(dealer, ANNA, 1)
    mail = add_mail(dealer, 1, "dead", "550 5.1.1 unknown", lead_id=lead)
    client = logged_in(app, ADMIN)
    detail = client.get(f"/outbox/{mail}").get_data(as_text=True)
    assert "Erneut senden" in detail and "Subject" in detail
    assert client.post(f"/outbox/{mail}/resend").status_code == 400  # no CSRF token
    response = post(client, f"/outbox/{mail}/resend", page=f"/outbox/{mail}")
    assert response.status_code == 303
    with dealer() as session:
        row = session.get(OutboxMail, mail)
        assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)
        actions = session.scalars(
            select(ProtocolEntry.action).where(ProtocolEntry.lead_id == lead)
        ).all()
        assert "outbox_resend" in actions
    after = client.get(f"/outbox/{mail}").get_data(as_text=True)
    assert "wieder in der Warteschlange" in after and "Erneut senden" not in after


def test_a_sent_mail_is_not_resent(app: Flask, dealer: sessionmaker[Session]) -> None:
    sent = add_mail(dealer, 1, "sent")
    other = add_mail(dealer, 2, "dead", "550 5.1.1 unknown")
    client = logged_in(app, ADMIN)
    assert "Erneut senden" not in client.get(f"/outbox/{sent}").get_data(as_text=True)
    response = post(client, f"/outbox/{sent}/resend", page=f"/outbox/{other}")
    assert response.status_code == 303
    assert "nicht erneut gesendet" in client.get(f"/outbox/{sent}").get_data(as_text=True)
    with dealer() as session:
        assert session.get(OutboxMail, sent).status == "sent"
    assert post(client, "/outbox/999/resend", page=f"/outbox/{other}").status_code == 404
    assert client.get("/outbox/999").status_code == 404


def test_a_failing_mail_waiting_for_its_retry_can_be_sent_now(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    from datetime import timedelta

    from mailgate.models import utcnow

    later = utcnow() + timedelta(hours=1)
    mail = add_mail(dealer, 1, "pending", "421 4.7.0 try later", next_attempt_at=later)
    fresh = add_mail(dealer, 2, "pending")
    client = logged_in(app, ADMIN)
    assert "Erneut senden" not in client.get(f"/outbox/{fresh}").get_data(as_text=True)
    assert post(client, f"/outbox/{mail}/resend", page=f"/outbox/{mail}").status_code == 303
    with dealer() as session:
        row = session.get(OutboxMail, mail)
        assert row.status == "pending" and row.next_attempt_at <= utcnow()


def composed(subject: str, text: str, html: str | None = None) -> bytes:
    """A mail as the outbox stores it: MIME, encoded headers, quoted-printable or base64."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "leads@autohaus.example"
    msg["To"] = "kunde@kunden.example"
    msg["Subject"] = subject
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes().replace(b"\n", b"\r\n")


SCRIPT = "<script>alert(1)</script>"


def test_a_queued_mail_can_be_read_before_it_goes_out(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    """Issue 21 finding 7: subject, recipient and text of a queued mail; headers decoded."""
    subject = f"Ihre Anfrage zum Mégane {SCRIPT}"
    raw = composed(subject, f"Guten Tag Frau Öztürk,\n\nvielen Dank. {SCRIPT}\n", "<p>HTML</p>")
    mail = add_mail(dealer, 7, "pending", raw=raw, subject=subject)
    client = logged_in(app, ADMIN)
    listing = client.get("/outbox").get_data(as_text=True)
    assert f'href="/outbox/{mail}">Ihre Anfrage zum Mégane &lt;script&gt;' in listing
    assert 'class="badge text-bg-info outbox-status outbox-pending">wartet</span>' in listing
    detail = client.get(f"/outbox/{mail}").get_data(as_text=True)
    preview = detail.split('id="preview"', 1)[1].split("</section>", 1)[0]
    assert "person7@kunden.example" in preview  # the stored recipients
    assert "Guten Tag Frau Öztürk," in preview and "<details open>" in preview
    assert "<script>alert" not in detail and "vielen Dank. &lt;script&gt;" in preview
    assert "<p>HTML</p>" not in detail  # the text part, not the HTML
    headers = detail.split("Technische Details", 1)[1]
    assert "Ihre Anfrage zum Mégane &lt;script&gt;" in headers and "=?utf-8?" not in headers
    anna = logged_in(app, ANNA)
    assert anna.get(f"/outbox/{mail}").status_code == 403  # admins only, as before


def test_a_mail_without_a_readable_text_says_so(app: Flask, dealer: sessionmaker[Session]) -> None:
    broken = add_mail(dealer, 8, "pending", raw=b"Content-Type: multipart/mixed\r\n\r\n--")
    client = logged_in(app, ADMIN)
    detail = client.get(f"/outbox/{broken}").get_data(as_text=True)
    assert "keinen Textteil" in detail


def test_a_deferred_mail_is_composed_for_the_preview(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    """A queued notification holds no bytes yet: the preview composes it (nothing stored)."""
    from .mails import inquiry
    from .test_webui import ingest

    ingest(dealer, inquiry(1, name="Paula Probe", message=f"Rabatt? {SCRIPT} & <b>fett</b>"))
    with dealer() as session:
        row = session.scalars(select(OutboxMail).where(OutboxMail.raw.is_(None))).first()
        assert row is not None and row.template
        mail, recipients = row.id, row.recipients
    client = logged_in(app, ADMIN)
    detail = client.get(f"/outbox/{mail}").get_data(as_text=True)
    preview = detail.split('id="preview"', 1)[1].split("</section>", 1)[0]
    assert "Für diese Vorschau aus der Vorlage erstellt" in preview
    assert recipients[0] in preview and "Name:    Paula Probe" in preview
    assert "<script>alert" not in detail and "<b>fett" not in detail
    subject = re.search(r"<dt>Betreff</dt><dd[^>]*>([^<]+)</dd>", preview)
    assert subject is not None and subject.group(1) != "–"
    with dealer() as session:
        stored = session.get(OutboxMail, mail)
        assert stored is not None and stored.raw is None and stored.status == "pending"


def test_a_template_that_cannot_compose_says_so(app: Flask, dealer: sessionmaker[Session]) -> None:
    broken = add_mail(dealer, 9, "pending", raw=None, template="no-such-template", render={"x": 1})
    client = logged_in(app, ADMIN)
    response = client.get(f"/outbox/{broken}")
    assert response.status_code == 200
    assert "lässt sich nicht aus ihrer Vorlage erstellen" in response.get_data(as_text=True)


def test_counts_in_german_notation(app: Flask, dealer: sessionmaker[Session]) -> None:
    with db.session_scope(dealer) as session:
        session.add_all(
            OutboxMail(
                idempotency_key=f"bulk:{n}",
                purpose="notification",
                mail_from="leads@autohaus.example",
                recipients=["x@kunden.example"],
                subject="s",
                message_id=f"<bulk-{n}@autohaus.example>",
                raw=b"Subject: s\r\n\r\nText",
                status="sent",
            )
            for n in range(1001)
        )
    html = logged_in(app, ADMIN).get("/outbox").get_data(as_text=True)
    assert "<small>(1.001)</small>" in html and "gesendet (1.001)" in html
