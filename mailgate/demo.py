"""The first-run demo: a demo dealership and a dozen inquiries through the real pipeline.

``mailgate serve --demo`` uses this on a separate database so a newcomer sees
leads, assignments, discarded bounces and the outbox at once.  All people and
domains are invented (``.example``); the demo never sends mail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.db import session_scope
from mailgate.dealer_settings import import_settings
from mailgate.ingest.store import store_raw
from mailgate.models import DealerSetting, InboundMail
from mailgate.worker import process_pending

LEAD_ADDRESS = "leads@demo.example"
DEMO_SETTINGS_TOML = """
[dealer]
name = "Autohaus Demo"
timezone = "Europe/Berlin"
language = "de"
from_name = "Autohaus Demo – Verkauf"
addresses = ["leads@demo.example"]
admin_address = "admin@demo.example"
unassigned_notice_to = "zentrale@demo.example"
send_mails = false

[hours]
mon = ["08:00-12:00", "13:00-18:00"]
tue = ["08:00-12:00", "13:00-18:00"]
wed = ["08:00-12:00", "13:00-18:00"]
thu = ["08:00-12:00", "13:00-18:00"]
fri = ["08:00-12:00", "13:00-18:00"]
sat = ["09:00-13:00"]
sun = []

[holidays]
country = "DE"
subdivision = "BY"
categories = ["public", "catholic"]

[escalation]
stage1 = "4h"
reminder_before = "1h"
stage2 = "24h"

[distribution]
mode = "rolling"
fallback_user = "lena.verkauf@demo.example"

[[users]]
email = "lena.verkauf@demo.example"
name = "Lena Verkauf"
role = "salesperson"
supervisor = "viktor.leitung@demo.example"

[[users]]
email = "tom.handel@demo.example"
name = "Tom Handel"
role = "salesperson"
supervisor = "viktor.leitung@demo.example"

[[users]]
email = "viktor.leitung@demo.example"
name = "Viktor Leitung"
role = "supervisor"
receives_leads = false

[[users]]
email = "admin@demo.example"
name = "Ada Admin"
role = "admin"
receives_leads = false
"""

# (sender, reply-to, subject, body, extra headers, html?)
_FORMS: list[tuple[str, str | None, str, str, dict[str, str], bool]] = [
    (
        "mobile.de <noreply@mobile-demo.example>",
        "Jan Kowalski <jan.kowalski@kunden.example>",
        "Anfrage zu Ihrem Inserat: Volkswagen Golf 1.5 TSI",
        "Name: Jan Kowalski\nE-Mail: jan.kowalski@kunden.example\nTelefon: 0171 2345678\n"
        "Marke: Volkswagen\nModell: Golf 1.5 TSI Life\nPreis: 24.890 €\n"
        "Nachricht: Ist der Wagen noch zu haben? Ich könnte Samstag vorbeikommen.",
        {},
        False,
    ),
    (
        "AutoScout24 <anfragen@autoscout-demo.example>",
        "Maria Rossi <maria.rossi@kunden.example>",
        "Neue Kontaktanfrage: BMW 320d Touring",
        "Name: Maria Rossi\nE-Mail: maria.rossi@kunden.example\nTelefon: +49 160 9876543\n"
        "Marke: BMW\nModell: 320d Touring\nPreis: € 31.900,-\n"
        "Nachricht: Gibt es noch Spielraum beim Preis?",
        {},
        False,
    ),
    (
        "Website <formular@autohaus-demo.example>",
        None,
        "Kontaktformular: Rückrufbitte",
        "Anrede: Herr\nVorname: Peter\nNachname: van der Berg\nE-Mail: p.vdberg@kunden.example\n"
        "Telefon: 089 123456\nNachricht: Bitte rufen Sie mich wegen eines Neuwagens zurück.",
        {},
        False,
    ),
    (
        "Website <formular@autohaus-demo.example>",
        "sam.taylor@customers.example",
        "Contact form: question about the Tiguan",
        "Your name: Sam Taylor\nYour email: sam.taylor@customers.example\nPhone: +44 20 7946 0000\n"
        "Model: Tiguan\nYour message: Do you deliver to the UK?",
        {},
        False,
    ),
    (
        "Website <formular@autohaus-demo.example>",
        None,
        "Probefahrt-Anfrage Skoda Octavia",
        "Name: Frau Dr. Anna Lehmann\nE-Mail: anna.lehmann@kunden.example\nTelefon: 0151 1112223\n"
        "Modell: Octavia Combi\nNachricht: Ich hätte gern eine Probefahrt nächste Woche.",
        {},
        False,
    ),
    (
        "Website <formular@autohaus-demo.example>",
        None,
        "Inzahlungnahme meines Fahrzeugs",
        "Name: Klaus Meier\nE-Mail: klaus.meier@kunden.example\nTelefon: 0172 5556667\n"
        "Nachricht: Ich möchte meinen Opel Astra (2017, 85.000 km) in Zahlung geben.",
        {},
        False,
    ),
    (
        "Website <formular@autohaus-demo.example>",
        None,
        "Finanzierungsanfrage",
        "Name: Selin Yilmaz\nE-Mail: selin.yilmaz@kunden.example\nTelefon: 0176 4443332\n"
        "Modell: ID.3 Pro\nNachricht: Welche Finanzierung bieten Sie mit 5.000 € Anzahlung an?",
        {},
        False,
    ),
    (
        "Website <formular@autohaus-demo.example>",
        None,
        "Servicetermin Inspektion",
        "Name: Georg Huber\nE-Mail: georg.huber@kunden.example\nTelefon: 08031 98765\n"
        "Nachricht: Ich brauche einen Werkstatt-Termin für die Inspektion meines Passat.",
        {},
        False,
    ),
    (
        "Händlerportal <portal@oem-demo.example>",
        None,
        "Neue Interessentenanfrage",
        "<html><body><table><tr><td>Name</td><td>Olga Petrova</td></tr>"
        "<tr><td>E-Mail</td><td>olga.petrova@kunden.example</td></tr>"
        "<tr><td>Telefon</td><td>0621 334455</td></tr><tr><td>Modell</td><td>Golf GTE</td></tr>"
        "<tr><td>Nachricht</td><td>Bitte senden Sie mir ein Angebot.</td></tr>"
        "</table></body></html>",
        {},
        True,
    ),
    (
        "Website <formular@autohaus-demo.example>",
        None,
        "Anfrage Gebrauchtwagen",
        "Name: Jürgen Weiß\nE-Mail: juergen.weiss@kunden.example\nTelefon: 0911 776655\n"
        "Preis: 12.500 €\nNachricht: Ist der Wagen unfallfrei? Grüße aus Fürth.",
        {"charset": "windows-1252"},
        False,
    ),
]


def demo_mails(now: datetime | None = None) -> list[bytes]:
    """Ten inquiries, a bounce and an out-of-office reply, each with its own Message-ID."""
    now = now or datetime.now(UTC)
    mails = []
    for n, (sender, reply_to, subject, body, extra, is_html) in enumerate(_FORMS):
        msg = EmailMessage()
        msg["From"] = sender
        if reply_to:
            msg["Reply-To"] = reply_to
        msg["To"] = LEAD_ADDRESS
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now - timedelta(minutes=30 * (len(_FORMS) - n)))
        msg["Message-ID"] = f"<demo-{n}@demo-sources.example>"
        if is_html:
            msg.set_content(body, subtype="html")
        elif extra.get("charset"):
            msg.set_content(body, charset=extra["charset"], cte="quoted-printable")
        else:
            msg.set_content(body)
        mails.append(msg.as_bytes(policy=policy.SMTP))
    mails.append(_bounce(now))
    mails.append(_out_of_office(now))
    return mails


def _bounce(now: datetime) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.demo.example>\r\n"
        f"To: {LEAD_ADDRESS}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(now)}\r\nMessage-ID: <demo-bounce@mx.demo.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        ' boundary="demo"\r\n\r\n--demo\r\nContent-Type: text/plain\r\n\r\n'
        "Your message could not be delivered.\r\n--demo\r\n"
        "Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; "
        "gone@kunden.example\r\nAction: failed\r\nStatus: 5.1.1\r\n--demo--\r\n"
    ).encode()


def _out_of_office(now: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jan Kowalski <jan.kowalski@kunden.example>"
    msg["To"] = LEAD_ADDRESS
    msg["Subject"] = "Automatische Antwort: Ihr Angebot"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = "<demo-ooo@kunden.example>"
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content("Ich bin bis zum 30. November nicht erreichbar.")
    return msg.as_bytes(policy=policy.SMTP)


def seed_demo(factory: sessionmaker[Session], settings: Settings) -> dict[str, Any]:
    """Import the demo dealership and feed the demo mails; adds nothing twice."""
    with session_scope(factory) as session:
        if session.get(DealerSetting, "dealer") is None:
            import_settings(session, DEMO_SETTINGS_TOML)
        known = set(session.scalars(select(InboundMail.message_id)))
    stored = 0
    for raw in demo_mails():
        message_id = raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        if message_id in known:
            continue
        store_raw(factory, raw, channel="demo", envelope_to=[LEAD_ADDRESS])
        stored += 1
    report = process_pending(factory, settings)
    return {"stored": stored, "statuses": report.statuses}
