"""The first-run demo: a demo dealership and a dozen inquiries through the real pipeline.

``mailgate serve --demo`` seeds a separate database with this, so a newcomer
sees leads, assignments, discarded bounces and the outbox at once, produced by
the same ``store_raw`` → worker path real mail takes (a demo that bypassed the
pipeline would show what we hope it does, not what it does).  All people and
domains are invented (``.example``); ``send_mails = false``, so nothing leaves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.db import session_scope
from mailgate.dealer_settings import import_settings
from mailgate.ingest.store import extract_message_id, store_raw
from mailgate.models import DealerSetting, InboundMail, User, utcnow
from mailgate.worker import process_pending

log = logging.getLogger("mailgate.demo")

DEMO_DEALER_NAME = "Autohaus Demo"
LEAD_ADDRESS = "leads@demo.example"
_WORKDAY = '["08:00-12:00", "13:00-18:00"]'

DEMO_SETTINGS_TOML = f"""\
# The demo dealership: every section and key spelled out, as a template for real ones.
[dealer]
name = "{DEMO_DEALER_NAME}"
timezone = "Europe/Berlin"
language = "de"
country = "DE"
from_name = "Autohaus Demo – Verkauf"
addresses = ["{LEAD_ADDRESS}"]
admin_address = "admin@demo.example"
unassigned_notice_to = "zentrale@demo.example"
send_mails = false                        # a demo never sends real mail
reply_mode = "relay"
answer_mode = "both"                      # answers from the mail client and the lead page
max_relay_size_mb = 20                    # the largest mail the relay passes, attachments incl.
base_url = "http://127.0.0.1:8025"
# Authentication-Results authserv-ids of the dealer's own MX; empty: none trusted.
trusted_authserv_ids = []
templates_dir = ""                        # the dealer's own mail templates (de/notification.txt…)
acknowledge_sources = []                  # confirm receipt to prospects of these sources

[hours]
mon = {_WORKDAY}
tue = {_WORKDAY}
wed = {_WORKDAY}
thu = {_WORKDAY}
fri = {_WORKDAY}
sat = ["09:00-13:00"]
sun = []

[holidays]
country = "DE"
subdivision = "BY"
categories = ["public", "catholic"]
closures = ["2026-12-24", "2026-12-31"]

[escalation]
stage1 = "4h"
reminder_before = "1h"
stage2 = "24h"
stage2_resubmission = "8h"
respect_hours_for_resubmissions = false
follow_up_after = "4h"                    # try again after "not reached" (working time)

[[escalation.rules]]
match = {{ source = ["oem:*"] }}
stage1 = "2h"

[distribution]
mode = "rolling"
fallback_user = "lena.verkauf@demo.example"
pool_user = ""
pool_oldest_only = false
distribute_followups_normally = false
use_vehicle_location = false
trade_in_cc = "ankauf@demo.example"
pool_notice = false
locations = {{}}
relay_domains = []

[[users]]
email = "lena.verkauf@demo.example"
name = "Lena Verkauf"
role = "salesperson"
supervisor = "viktor.leitung@demo.example"
receives_leads = true
can_be_assigned = true

[[users]]
email = "tom.handel@demo.example"
name = "Tom Handel"
role = "salesperson"
supervisor = "viktor.leitung@demo.example"
receives_leads = true
can_be_assigned = true

[[users]]
email = "viktor.leitung@demo.example"
name = "Viktor Leitung"
role = "supervisor"
receives_leads = false
can_be_assigned = true

[[users]]
email = "admin@demo.example"
name = "Ada Admin"
role = "admin"
receives_leads = false
can_be_assigned = false
"""


# Every demo user can log in to the web UI with this password (demo database only).
DEMO_PASSWORD = "mailgate-demo"  # noqa: S105  # nosec B105  # published demo password, by design


class DemoError(RuntimeError):
    """The database belongs to a real dealership; the demo must not touch it."""


@dataclass(frozen=True)
class DemoInquiry:
    """One sample mail; ``key`` makes its Message-ID, so it must never change."""

    key: str
    sender: str
    subject: str
    body: str
    minutes_ago: int
    reply_to: str | None = None
    html: bool = False
    charset: str = "utf-8"


INQUIRIES: tuple[DemoInquiry, ...] = (
    DemoInquiry(
        key="mobile-de",
        # Marketplaces send from their own system address; the customer is in Reply-To.
        sender="mobile.de <noreply@mobile.de>",
        reply_to="Jan Kowalski <jan.kowalski@kunden.example>",
        subject="Anfrage zu Ihrem Inserat: Volkswagen Golf 1.5 TSI Life",
        body="Sie haben eine neue Anfrage zu Ihrem Inserat erhalten.\n\n"
        "Name: Jan Kowalski\nE-Mail: jan.kowalski@kunden.example\nTelefon: 0171 2345678\n\n"
        "Marke: Volkswagen\nModell: Golf 1.5 TSI Life\nPreis: 24.890 €\n"
        "Inserat-Nr.: 398712345\n\n"
        "Nachricht: Ist der Wagen noch zu haben? Ich könnte am Samstag vorbeikommen.\n",
        minutes_ago=290,
    ),
    DemoInquiry(
        key="autoscout24",
        sender="AutoScout24 <noreply@autoscout24.de>",
        reply_to="Maria Rossi <maria.rossi@kunden.example>",
        subject="Neue Kontaktanfrage: BMW 320d Touring",
        body="Ein Interessent hat Ihnen eine Nachricht geschickt.\n\n"
        "Name: Maria Rossi\nE-Mail: maria.rossi@kunden.example\nTelefon: +49 160 9876543\n"
        "Marke: BMW\nModell: 320d Touring\nPreis: € 31.900,-\nAnzeigen-ID: 8f2c41d7\n\n"
        "Nachricht: Gibt es beim Preis noch etwas Spielraum?\n",
        minutes_ago=250,
    ),
    DemoInquiry(
        key="website-de",
        sender="Website Autohaus Demo <formular@autohaus-demo.example>",
        subject="Kontaktformular: Rückrufbitte",
        body="Anrede: Herr\nVorname: Peter\nNachname: van der Berg\n"
        "Straße: Lindenweg 4\nPLZ: 80331\nOrt: München\n"
        "E-Mail: p.vandenberg@kunden.example\nTelefon: 089 123456\n\n"
        "Nachricht: Bitte rufen Sie mich wegen eines Neuwagens zurück, am besten nach 17 Uhr.\n",
        minutes_ago=210,
    ),
    DemoInquiry(
        key="website-en",
        sender="Website Autohaus Demo <formular@autohaus-demo.example>",
        reply_to="sam.taylor@customers.example",
        subject="Contact form: question about the Tiguan",
        body="Your name: Sam Taylor\nYour email: sam.taylor@customers.example\n"
        "Phone: +44 20 7946 0000\nModel: Tiguan Allspace\n\n"
        "Your message: Is the car still available? I am moving to Munich next month.\n",
        minutes_ago=180,
    ),
    DemoInquiry(
        key="test-drive",
        sender="Website Autohaus Demo <formular@autohaus-demo.example>",
        subject="Probefahrt-Anfrage: Škoda Octavia Combi",
        body="Anrede: Frau\nName: Dr. Anna Lehmann\nE-Mail: anna.lehmann@kunden.example\n"
        "Telefon: 0151 1112223\nMarke: Škoda\nModell: Octavia Combi\n\n"
        "Nachricht: Ich hätte gern eine Probefahrt nächste Woche, vormittags.\n",
        minutes_ago=150,
    ),
    DemoInquiry(
        key="trade-in",
        sender="Website Autohaus Demo <formular@autohaus-demo.example>",
        subject="Inzahlungnahme meines Fahrzeugs",
        body="Name: Klaus Meier\nE-Mail: klaus.meier@kunden.example\nTelefon: 0172 5556667\n\n"
        "Nachricht: Ich möchte meinen Opel Astra (Erstzulassung 2017, 85.000 km) beim Kauf "
        "eines Neuwagens in Zahlung geben. Was wäre er Ihnen wert?\n",
        minutes_ago=120,
    ),
    DemoInquiry(
        key="financing",
        sender="Website Autohaus Demo <formular@autohaus-demo.example>",
        subject="Finanzierungsanfrage ID.3 Pro",
        body="Name: Selin Yilmaz\nE-Mail: selin.yilmaz@kunden.example\nTelefon: 0176 4443332\n"
        "Marke: Volkswagen\nModell: ID.3 Pro\n\n"
        "Nachricht: Welche Finanzierung können Sie mir mit 5.000 € Anzahlung und 48 Monaten "
        "Laufzeit anbieten?\n",
        minutes_ago=95,
    ),
    DemoInquiry(
        key="service",
        sender="Website Autohaus Demo <formular@autohaus-demo.example>",
        subject="Servicetermin: Inspektion Passat",
        body="Name: Georg Huber\nE-Mail: georg.huber@kunden.example\nTelefon: 08031 98765\n"
        "Marke: Volkswagen\nModell: Passat Variant\n\n"
        "Nachricht: Ich brauche einen Werkstatt-Termin für die Inspektion, gern mit Ersatzwagen.\n",
        minutes_ago=70,
    ),
    DemoInquiry(
        key="html-only",
        # Some portals send HTML only; the pipeline reads it as text, the UI never renders it.
        sender="Händlerportal <leads@oem-portal.example>",
        subject="Neue Interessentenanfrage",
        body="<html><body><h1>Neue Interessentenanfrage</h1><table>"
        "<tr><th>Name:</th><td>Olga Petrova</td></tr>"
        "<tr><th>E-Mail:</th><td>olga.petrova@kunden.example</td></tr>"
        "<tr><th>Telefon:</th><td>0621 334455</td></tr>"
        "<tr><th>Modell:</th><td>Golf GTE</td></tr></table>"
        "<p>Nachricht: Bitte senden Sie mir ein Angebot f&uuml;r den Golf GTE &ndash; "
        "gern mit Wallbox.</p></body></html>",
        minutes_ago=45,
        html=True,
    ),
    DemoInquiry(
        key="windows-1252",
        # Older form mailers still write Windows-1252, quoted-printable (€ is =80 there).
        sender="Website Autohaus Demo <formular@autohaus-demo.example>",
        subject="Anfrage Gebrauchtwagen",
        body="Name: Jürgen Weiß\nE-Mail: juergen.weiss@kunden.example\nTelefon: 0911 776655\n"
        "Modell: Audi A4 Avant\nPreis: 12.500 €\n\n"
        "Nachricht: Ist der Wagen unfallfrei? Schöne Grüße aus Fürth.\n",
        minutes_ago=20,
        charset="windows-1252",
    ),
)


def _inquiry_mail(inquiry: DemoInquiry, now: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = inquiry.sender
    if inquiry.reply_to:
        msg["Reply-To"] = inquiry.reply_to
    msg["To"] = LEAD_ADDRESS
    msg["Subject"] = inquiry.subject
    msg["Date"] = format_datetime(now - timedelta(minutes=inquiry.minutes_ago))
    msg["Message-ID"] = f"<demo-{inquiry.key}@demo-sources.example>"
    if inquiry.html:
        msg.set_content(inquiry.body, subtype="html")
    elif inquiry.charset != "utf-8":
        msg.set_content(inquiry.body, charset=inquiry.charset, cte="quoted-printable")
    else:
        msg.set_content(inquiry.body)
    return msg.as_bytes(policy=policy.SMTP)


def _bounce(now: datetime) -> bytes:
    """An RFC 3464 delivery report, as Postfix returns a mail to an unknown recipient."""
    date = format_datetime(now - timedelta(minutes=10))
    lines = [
        "From: Mail Delivery System <MAILER-DAEMON@mx.demo.example>",
        f"To: {LEAD_ADDRESS}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {date}",
        "Message-ID: <demo-bounce@mx.demo.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="demo-dsn"',
        "",
        "--demo-dsn",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is the mail system at host mx.demo.example.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients.",
        "",
        "<verzogen@kunden.example>: host mx.kunden.example said: 550 5.1.1",
        "    mailbox unknown",
        "",
        "--demo-dsn",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.demo.example",
        f"Arrival-Date: {date}",
        "",
        "Final-Recipient: rfc822; verzogen@kunden.example",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 mailbox unknown",
        "",
        "--demo-dsn",
        "Content-Type: text/rfc822-headers",
        "",
        "From: Lena Verkauf <lena.verkauf@demo.example>",
        "To: verzogen@kunden.example",
        "Subject: Ihre Anfrage zum Golf",
        "",
        "--demo-dsn--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def _out_of_office(now: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jan Kowalski <jan.kowalski@kunden.example>"
    msg["To"] = LEAD_ADDRESS
    msg["Subject"] = "Automatische Antwort: Ihr Angebot zum Golf"
    msg["Date"] = format_datetime(now - timedelta(minutes=5))
    msg["Message-ID"] = "<demo-out-of-office@kunden.example>"
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: never answer, never make a lead
    msg.set_content(
        "Vielen Dank für Ihre Nachricht. Ich bin bis zum 30. November nicht erreichbar.\n"
    )
    return msg.as_bytes(policy=policy.SMTP)


def demo_mails(now: datetime) -> list[bytes]:
    """Ten varied inquiries, a bounce and an out-of-office reply, dated shortly before now."""
    mails = [_inquiry_mail(inquiry, now) for inquiry in INQUIRIES]
    return [*mails, _bounce(now), _out_of_office(now)]


def _ensure_demo_settings(session: Session) -> None:
    """Import the demo settings once; later edits in the web UI are kept on re-seeding."""
    stored = session.get(DealerSetting, "dealer")
    if stored is None:
        import_settings(session, DEMO_SETTINGS_TOML)
        _set_demo_passwords(session)
        return
    name = stored.data.get("name", "")
    if name != DEMO_DEALER_NAME:
        raise DemoError(
            f"this database holds the settings of {name or 'a dealership'!r}; "
            "the demo needs a database of its own"
        )


def _set_demo_passwords(session: Session) -> None:
    """Demo users get the published demo password, so the web UI can be tried at once."""
    from mailgate.webui.passwords import hash_password

    hashed = hash_password(DEMO_PASSWORD)
    for user in session.scalars(select(User).where(User.password_hash.is_(None))):
        user.password_hash = hashed


def seed_demo(
    factory: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> dict[str, int]:
    """Seed the demo dealership and run its mails through the pipeline; safe to repeat.

    Returns how many of the demo mails are in each inbound status, e.g.
    ``{"discarded": 2, "processed": 10}`` (the same on every run).
    """
    mails = demo_mails(now or utcnow())
    ids = [extract_message_id(raw) for raw in mails]
    with session_scope(factory) as session:
        _ensure_demo_settings(session)
        known = set(session.scalars(select(InboundMail.message_id).where(_demo_mail(ids))))
    stored = 0
    for raw, message_id in zip(mails, ids, strict=True):
        if message_id not in known:
            store_raw(factory, raw, channel="demo", envelope_to=[LEAD_ADDRESS])
            stored += 1
    process_pending(factory, settings)
    log.info("demo: %d of %d mails stored, the rest were there already", stored, len(mails))
    log.info("demo: log in as admin@demo.example (password %r) or any demo user", DEMO_PASSWORD)
    with factory() as session:
        rows = session.execute(
            select(InboundMail.status, func.count())
            .where(_demo_mail(ids))
            .group_by(InboundMail.status)
        )
        return {status: count for status, count in sorted(rows.all())}


def _demo_mail(message_ids: list[str | None]) -> ColumnElement[bool]:
    return InboundMail.message_id.in_([mid for mid in message_ids if mid])
