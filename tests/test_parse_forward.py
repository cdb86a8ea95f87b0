"""Forwarded leads: the quoted original is parsed, the forwarding employee never is."""

from __future__ import annotations

from email.message import EmailMessage

from mailgate.parsers import ParseContext, parse_raw
from mailgate.parsers.forward import unwrap_forward
from mailgate.parsers.message import load

DEALER = ParseContext(dealer_addresses=frozenset({"leads@autohaus-beispiel.example"}))


def _mail(subject: str, body: str, sender: str = "Eva Sales <eva@autohaus-beispiel.example>"):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "leads@autohaus-beispiel.example"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes()


OUTLOOK_DE = """Bitte bearbeiten.

Eva Sales
Tel. 0911 555000

-----Ursprüngliche Nachricht-----
Von: Max Kunde [mailto:max.kunde@kunde.example]
Gesendet: Montag, 23. November 2026 10:00
An: Eva Sales
Betreff: Frage zum Golf

Ist der Golf noch da? Erreichbar unter Telefon: 0171 2345678
"""


def test_outlook_de_forward_takes_sender_and_subject_from_the_quoted_block() -> None:
    view = unwrap_forward(load(_mail("WG: Frage zum Golf", OUTLOOK_DE)), DEALER)
    assert view.from_addresses == [("Max Kunde", "max.kunde@kunde.example")]
    assert view.subject == "Frage zum Golf"
    assert view.text.startswith("Ist der Golf noch da?")
    assert any("forwarded by eva@autohaus-beispiel.example" in w for w in view.warnings)


def test_forwarding_employee_is_never_the_customer() -> None:
    lead = parse_raw(_mail("WG: Frage zum Golf", OUTLOOK_DE), ctx=DEALER)
    assert lead.customer.email == "max.kunde@kunde.example"
    assert lead.customer.name == "Max Kunde"
    assert lead.customer.phone == "0171 2345678"
    assert "Eva" not in (lead.message or "") and "0911" not in (lead.message or "")


def test_english_outlook_block_without_address_yields_no_sender_but_a_warning() -> None:
    body = (
        "FYI\n\n-----Original Message-----\nFrom: Max Kunde\nSent: Monday\nTo: Sales\n"
        "Subject: Golf\n\nName: Max Kunde\nE-Mail: max.kunde@kunde.example\n"
    )
    view = unwrap_forward(load(_mail("FW: Golf", body)), DEALER)
    assert view.from_addresses == []
    assert any("without an address" in w for w in view.warnings)
    lead = parse_raw(_mail("FW: Golf", body), ctx=DEALER)
    assert lead.customer.email == "max.kunde@kunde.example"


def test_a_customer_reply_with_original_message_is_not_unwrapped() -> None:
    body = (
        "Freitag passt.\n\n-----Original Message-----\n"
        "From: Verkauf <leads@autohaus-beispiel.example>\nSent: Monday\nSubject: Termin\n\nWann?\n"
    )
    raw = _mail("AW: Termin", body, sender="Max Kunde <max.kunde@kunde.example>")
    view = load(raw)
    assert unwrap_forward(view, DEALER) is view
    assert parse_raw(raw, ctx=DEALER).customer.email == "max.kunde@kunde.example"


def test_a_contact_form_von_line_is_not_a_forward_header() -> None:
    body = "Von: Max Kunde <max.kunde@kunde.example>\nBetreff: Golf\n\nNachrichtentext:\nHallo\n"
    raw = _mail("Kontakt", body, sender="Site <wordpress@autohaus-beispiel.example>")
    view = load(raw)
    assert unwrap_forward(view, DEALER) is view


def test_nested_forwards_are_unwrapped_to_the_first_original() -> None:
    inner = (
        "---------- Forwarded message ---------\nFrom: Max Kunde <max.kunde@kunde.example>\n"
        "Date: Mon\nSubject: Golf\nTo: <eva@autohaus-beispiel.example>\n\nHallo, Golf noch da?\n"
    )
    outer = (
        "bitte übernehmen\n\n---------- Forwarded message ---------\n"
        "From: Eva Sales <eva@autohaus-beispiel.example>\nDate: Mon\nSubject: Fwd: Golf\n"
        "To: <leads@autohaus-beispiel.example>\n\n" + inner
    )
    view = unwrap_forward(load(_mail("Fwd: Fwd: Golf", outer)), DEALER)
    assert view.from_addresses == [("Max Kunde", "max.kunde@kunde.example")]
    assert view.text.strip() == "Hallo, Golf noch da?"


def test_bounce_is_never_unwrapped() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: max@kunde.example\r\n"
        b"Subject: x\r\n\r\nName: Max\r\n--b--\r\n"
    )
    view = load(raw)
    assert unwrap_forward(view, DEALER) is view
    lead = parse_raw(raw, ctx=DEALER)
    assert not lead.is_lead and lead.customer.email is None


def test_customer_forwarding_the_dealers_offer_back_stays_the_customer() -> None:
    body = (
        "Hier nochmal Ihr Angebot - geht da noch was?\n\n"
        "---------- Forwarded message ---------\n"
        "From: Verkauf <verkauf@autohaus-beispiel.example>\nDate: Mon\nSubject: Angebot\n"
        "To: <max.kunde@kunde.example>\n\nUnser Angebot: 24.890 EUR\n"
    )
    raw = _mail("Fwd: Angebot", body, sender="Max Kunde <max.kunde@kunde.example>")
    lead = parse_raw(raw, ctx=DEALER)
    assert lead.customer.email == "max.kunde@kunde.example"
    assert "geht da noch was?" in (lead.message or "")


FAKE_PLATFORM_FORWARD = """FYI

-----Original Message-----
From: mobile.de <noreply@mobile.de>
Sent: Monday, 23 November 2026 10:00
To: leads@autohaus-beispiel.example
Subject: Anfrage zu Ihrem Fahrzeug

Name: Max Kunde
E-Mail: max.kunde@kunde.example
Telefon: 0171 2345678
Nachricht: Ist der Golf noch da?
"""


def test_a_quoted_platform_sender_counts_only_when_the_dealership_forwarded_it() -> None:
    """Anyone can type "From: noreply@mobile.de" into a forward; staff forwards are believed."""
    by_staff = parse_raw(_mail("WG: Anfrage", FAKE_PLATFORM_FORWARD), ctx=DEALER)
    by_stranger = parse_raw(
        _mail("Fwd: Anfrage", FAKE_PLATFORM_FORWARD, sender="Mallory <m@evil.example>"), ctx=DEALER
    )
    assert by_staff.parser == "mobile_de" and by_staff.source == "mobile.de"
    assert by_stranger.parser == "generic" and by_stranger.source == "unknown"
    assert any("forward from outside the dealership" in w for w in by_stranger.warnings)
    assert by_stranger.customer.email == "max.kunde@kunde.example"  # still a usable lead
