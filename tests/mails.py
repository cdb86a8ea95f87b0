"""Test mail builders: invented people, ``.example`` domains only."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

LEAD_ADDRESS = "leads@autohaus.example"


def inquiry(
    n: int = 1,
    *,
    name: str = "Erika Musterfrau",
    email: str | None = None,
    phone: str | None = None,
    message: str = "Ist das Fahrzeug noch verfügbar? Ich hätte gern eine Probefahrt.",
    message_id: str | None = None,
    padding: int = 0,
) -> bytes:
    """A website-form inquiry with labelled fields, as a browser form mailer sends it."""
    msg = EmailMessage()
    msg["From"] = "Website Autohaus <noreply@autohaus-web.example>"
    msg["To"] = LEAD_ADDRESS
    msg["Subject"] = f"Neue Anfrage über das Kontaktformular #{n}"
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id or f"<inquiry-{n}@autohaus-web.example>"
    body = (
        f"Name: {name}\n"
        f"E-Mail: {email or f'kunde{n}@kunden.example'}\n"
        f"Telefon: {phone or f'+49 170 {1000000 + n}'}\n"
        "Marke: Volkswagen\n"
        "Modell: Golf 8 GTI\n"
        "Preis: 38.450,- €\n"
        f"Nachricht: {message}\n"
    )
    if padding:
        line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\n"
        body += "\n" + (line * (padding // len(line) + 1))[:padding] + "\n"
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


def bounce(n: int = 1) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.autohaus.example>\r\n"
        f"To: {LEAD_ADDRESS}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <bounce-{n}@mx.autohaus.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n"
        "Name: Someone Quoted\r\nE-Mail: quoted@kunden.example\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Final-Recipient: rfc822; gone@kunden.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b1--\r\n"
    ).encode()


def auto_reply(n: int = 1) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Max Beispiel <max@kunden.example>"
    msg["To"] = LEAD_ADDRESS
    msg["Subject"] = "Automatische Antwort: Ihre Anfrage"
    msg["Auto-Submitted"] = "auto-replied"
    msg["Message-ID"] = f"<ooo-{n}@kunden.example>"
    msg.set_content("Ich bin bis 5.12. nicht im Büro.\nTelefon: 0170 999999\n")
    return msg.as_bytes(policy=policy.SMTP)


def no_contact(n: int = 1) -> bytes:
    msg = EmailMessage()
    msg["From"] = "noreply@portal.example"
    msg["To"] = LEAD_ADDRESS
    msg["Subject"] = "Ihre Statistik der Woche"
    msg["Message-ID"] = f"<stats-{n}@portal.example>"
    msg.set_content("Ihre Inserate wurden 120 mal angesehen.\n")
    return msg.as_bytes(policy=policy.SMTP)
