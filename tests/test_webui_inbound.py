"""The inbox reads like a product (issue 21 finding 7): sender and subject decoded, the state in
German words on a badge, the channel in words; hostile headers are shown, never run.  Admins
only, as before.  Both databases."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from mailgate.ingest.store import store_raw
from mailgate.webui.inbound_summary import HEAD_BYTES, summarise

from .mails import LEAD_ADDRESS
from .test_webui import client, ingest, page  # noqa: F401 (fixture)
from .webui_helpers import ensure_user, logged_in, web_app

SCRIPT = "<script>alert(1)</script>"


def raw_mail(subject: str, sender: str, body: str = "Hallo") -> bytes:
    return (
        f"From: {sender}\r\nTo: {LEAD_ADDRESS}\r\nSubject: {subject}\r\n"
        f"Message-ID: <x-{abs(hash(subject))}@kunden.example>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def rows(html: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>", 1)[1], re.S)


def test_sender_and_subject_are_decoded_and_escaped(
    dealer: sessionmaker[Session],
    client: FlaskClient,  # noqa: F811
) -> None:
    store_raw(
        dealer,
        raw_mail(
            "=?utf-8?q?Anfrage_f=C3=BCr_den_Golf?=",
            "=?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <jm@kunden.example>",
        ),
        channel="smtp",
        envelope_to=[LEAD_ADDRESS],
    )
    store_raw(
        dealer,
        raw_mail(f"{SCRIPT} Probefahrt", f'"{SCRIPT}" <evil@kunden.example>'),
        channel="imap",
        envelope_to=[LEAD_ADDRESS],
    )
    html = page(client, "/inbound")
    newest, older = rows(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Probefahrt" in newest
    assert "<script>alert" not in html and "evil@kunden.example" in newest
    assert "aus einem Postfach abgeholt" in newest  # the channel in words, not "imap"
    assert "Anfrage für den Golf" in older and "Jürgen Müller" in older
    assert "=?utf-8?" not in html
    state = re.search(r'class="badge text-bg-info status status-received">([^<]+)</span>', older)
    assert state is not None and state.group(1) in ("eingegangen", "empfangen")
    assert "Betreff" in html and "Absender" in html and "Zustand" in html


def test_the_state_is_a_word_on_a_badge(
    dealer: sessionmaker[Session],
    client: FlaskClient,  # noqa: F811
) -> None:
    from .mails import bounce, inquiry

    ingest(dealer, inquiry(1), bounce(1))
    html = page(client, "/inbound")
    assert 'text-bg-success status status-processed">verarbeitet</span>' in html
    assert 'text-bg-secondary status status-discarded">verworfen</span>' in html
    assert "Anfrage 1</a>" in html or re.search(r">Anfrage \d+</a>", html)


def test_a_mail_without_subject_or_with_a_huge_head(
    dealer: sessionmaker[Session],
    client: FlaskClient,  # noqa: F811
) -> None:
    store_raw(dealer, b"From: a@b.example\r\n\r\nno subject", channel="smtp")
    store_raw(dealer, b"X-Pad: " + b"a" * (HEAD_BYTES + 10) + b"\r\n\r\nbody", channel="smtp")
    html = page(client, "/inbound")
    assert html.count("(ohne Betreff)") == 2  # never a 500, never a half-read header


def test_summaries_of_hostile_heads() -> None:
    assert summarise(b"").subject == ""
    assert summarise(b"Subject: =?x-unknown?q?abc?=\r\n\r\n").subject  # unknown charset: shown
    folded = summarise(b"Subject: =?utf-8?q?a=0D=0ABcc:_x@y?=\r\nFrom: <a@b.example>\r\n\r\n")
    assert "\n" not in folded.subject and "\r" not in folded.subject
    nested = summarise(b"From: " + b"(" * 5000 + b"a@b.example\r\n\r\n")
    assert nested.sender_address == "" or "@" in nested.sender_address


def test_the_inbox_stays_admin_only(dealer: sessionmaker[Session]) -> None:
    ensure_user(dealer, "admin@autohaus.example", "admin")
    ensure_user(dealer, "anna@autohaus.example", "salesperson")
    app = web_app(dealer)
    assert logged_in(app, "anna@autohaus.example").get("/inbound").status_code == 403
    assert app.test_client().get("/inbound").status_code == 302  # to the login page
