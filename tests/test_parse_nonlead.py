"""Non-lead recognition: bounces and auto-replies by headers, never by the quoted original."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from mailgate.parsers.message import load
from mailgate.parsers.nonlead import non_lead_reason


def _view(subject: str, **headers: str):
    msg = EmailMessage()
    msg["From"] = headers.pop("sender", "Kunde <kunde@kunde.example>")
    msg["Subject"] = subject
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content("Name: X\nE-Mail: x@kunde.example\n")
    return load(msg.as_bytes())


@pytest.mark.parametrize(
    "subject",
    [
        "Automatische Antwort: Anfrage",
        "Abwesenheitsnotiz: Anfrage",
        "Automatic reply: Inquiry",
        "Out of Office: Inquiry",
        "Automatisch antwoord: Aanvraag",
        "Afwezig: Aanvraag",
        "Réponse automatique : Demande",
        "Absence du bureau",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    assert non_lead_reason(_view(subject), None) == "auto-reply: out-of-office subject"


@pytest.mark.parametrize(
    "subject",
    ["Out of office hours test drive?", "Anfrage: Abwesenheit der Klimaanlage?", "Re: Angebot"],
)
def test_inquiries_mentioning_absence_are_leads(subject: str) -> None:
    assert non_lead_reason(_view(subject), None) is None


def test_x_auto_response_suppress_alone_is_not_an_auto_reply() -> None:
    assert non_lead_reason(_view("Anfrage", X_Auto_Response_Suppress="All"), None) is None


def test_auto_submitted_no_is_a_normal_mail() -> None:
    assert non_lead_reason(_view("Anfrage", Auto_Submitted="no"), None) is None
    reason = non_lead_reason(_view("Anfrage", Auto_Submitted="auto-generated"), None)
    assert reason == "auto-reply: Auto-Submitted auto-generated"


@pytest.mark.parametrize(
    ("subject", "sender"),
    [
        ("Undeliverable: Anfrage", "postmaster@autohaus.example"),
        ("Unzustellbar: Anfrage", "MAILER-DAEMON@mx.example"),
        ("Onbestelbaar: Aanvraag", "postmaster@mx.example"),
        ("Non remis : Demande", "postmaster@mx.example"),
    ],
)
def test_daemon_bounces_by_subject(subject: str, sender: str) -> None:
    assert non_lead_reason(_view(subject, sender=sender), None) == "bounce: sent by a mailer daemon"


def test_null_envelope_sender_is_a_bounce() -> None:
    assert non_lead_reason(_view("Hallo"), "") == "bounce: null envelope sender"


def test_delivery_status_part_inside_mixed_is_a_bounce() -> None:
    raw = (
        b"From: mx@example.example\r\nSubject: Hallo\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nName: Max\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b--\r\n"
    )
    assert non_lead_reason(load(raw), None) == "bounce: delivery status part"


def test_read_receipt() -> None:
    raw = (
        b"From: kunde@kunde.example\r\nSubject: Gelesen: Angebot\r\n"
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"\r\n'
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nread\r\n--b--\r\n"
    )
    assert non_lead_reason(load(raw), None) == "read receipt: disposition notification"
