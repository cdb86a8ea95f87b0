"""The first-run demo: a demo dealership and its last few working days, through the real pipeline.

``mailgate serve --demo`` seeds a separate database with this, so a newcomer
sees what the product is for: inquiries from the marketplaces (written as
mobile.de, AutoScout24 and Kleinanzeigen send them, so they are recognised), the
website and a car maker's lead system, arriving over the last days of working
time so every due state appears (on time, due soon, overdue), a lead waiting in
the pool, one put aside for a resubmission, one won and one lost, discarded
bounces and the outbox.  Every inquiry takes the same ``store_raw`` → worker
path real mail takes, at the moment it "arrived" (a demo that bypassed the
pipeline would show what we hope it does, not what it does); the salespeople's
actions afterwards are the same domain actions the lead page calls.  People and
the dealership are invented (``.example``); ``send_mails = false``, so nothing
leaves.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.db import session_scope
from mailgate.dealer_settings import (
    config_from_document,
    import_settings,
    load_dealer_config,
    validate,
)
from mailgate.distribution.actions import take_from_pool
from mailgate.escalation.actions import close_lead, log_contact, set_qualification, set_resubmission
from mailgate.escalation.calendar import WorkingCalendar
from mailgate.ingest.store import extract_message_id, store_raw
from mailgate.models import DealerSetting, InboundMail, Lead, User, utcnow
from mailgate.worker import claim_ids, process_ids, process_pending, worker_identity

log = logging.getLogger("mailgate.demo")

DEMO_DEALER_NAME = "Autohaus Demo"
LEAD_ADDRESS = "leads@demo.example"
POOL_ADDRESS = "pool.werkstatt@demo.example"
DEFAULT_BASE_URL = "http://127.0.0.1:8025"
_WORKDAY = '["08:00-12:00", "13:00-18:00"]'

_SETTINGS_TEMPLATE = f"""\
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
base_url = "@BASE_URL@"                 # follows the configured web listener
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
mode = "pool"                             # leads wait in the pool until someone takes one
fallback_user = "lena.verkauf@demo.example"
pool_user = "{POOL_ADDRESS}"
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
receives_leads = false                    # takes leads from the pool
can_be_assigned = true

[[users]]
email = "tom.handel@demo.example"
name = "Tom Handel"
role = "salesperson"
supervisor = "viktor.leitung@demo.example"
receives_leads = false
can_be_assigned = true

[[users]]
email = "viktor.leitung@demo.example"
name = "Viktor Leitung"
role = "supervisor"
receives_leads = false
can_be_assigned = true

[[users]]
email = "{POOL_ADDRESS}"
name = "Pool"
role = "salesperson"
receives_leads = false                    # the pool account: holds leads, never works them
can_be_assigned = false

[[users]]
email = "admin@demo.example"
name = "Ada Admin"
role = "admin"
receives_leads = false
can_be_assigned = false
"""


def demo_settings_toml(base_url: str = DEFAULT_BASE_URL) -> str:
    """The demo's settings document; links in its mails point at the web UI as configured."""
    return _SETTINGS_TEMPLATE.replace("@BASE_URL@", base_url)


DEMO_SETTINGS_TOML = demo_settings_toml()


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
    # How long before "now" it arrived, in the dealership's working time: so the due
    # states come out the same whatever the hour or weekday the demo is started.
    working_minutes_ago: int
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
        working_minutes_ago=9 * 60,
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
        working_minutes_ago=4 * 9 * 60,
    ),
    DemoInquiry(
        key="website-de",
        sender="Website Autohaus Demo <formular@demo.example>",
        subject="Kontaktformular: Rückrufbitte",
        body="Anrede: Herr\nVorname: Peter\nNachname: van der Berg\n"
        "Straße: Lindenweg 4\nPLZ: 80331\nOrt: München\n"
        "E-Mail: p.vandenberg@kunden.example\nTelefon: 089 123456\n\n"
        "Nachricht: Bitte rufen Sie mich wegen eines Neuwagens zurück, am besten nach 17 Uhr.\n",
        working_minutes_ago=3 * 9 * 60,
    ),
    DemoInquiry(
        key="website-en",
        sender="Website Autohaus Demo <formular@demo.example>",
        reply_to="sam.taylor@customers.example",
        subject="Contact form: question about the Tiguan",
        body="Your name: Sam Taylor\nYour email: sam.taylor@customers.example\n"
        "Phone: +44 20 7946 0000\nModel: Tiguan Allspace\n\n"
        "Your message: Is the car still available? I am moving to Munich next month.\n",
        working_minutes_ago=2 * 9 * 60,
    ),
    DemoInquiry(
        key="test-drive",
        sender="Website Autohaus Demo <formular@demo.example>",
        subject="Probefahrt-Anfrage: Škoda Octavia Combi",
        body="Anrede: Frau\nName: Dr. Anna Lehmann\nE-Mail: anna.lehmann@kunden.example\n"
        "Telefon: 0151 1112223\nMarke: Škoda\nModell: Octavia Combi\n\n"
        "Nachricht: Ich hätte gern eine Probefahrt nächste Woche, vormittags.\n",
        working_minutes_ago=300,
    ),
    DemoInquiry(
        key="trade-in",
        sender="Website Autohaus Demo <formular@demo.example>",
        subject="Inzahlungnahme meines Fahrzeugs",
        body="Name: Klaus Meier\nE-Mail: klaus.meier@kunden.example\nTelefon: 0172 5556667\n\n"
        "Nachricht: Ich möchte meinen Opel Astra (Erstzulassung 2017, 85.000 km) beim Kauf "
        "eines Neuwagens in Zahlung geben. Was wäre er Ihnen wert?\n",
        working_minutes_ago=330,
    ),
    DemoInquiry(
        key="financing",
        sender="Website Autohaus Demo <formular@demo.example>",
        subject="Finanzierungsanfrage ID.3 Pro",
        body="Name: Selin Yilmaz\nE-Mail: selin.yilmaz@kunden.example\nTelefon: 0176 4443332\n"
        "Marke: Volkswagen\nModell: ID.3 Pro\n\n"
        "Nachricht: Welche Finanzierung können Sie mir mit 5.000 € Anzahlung und 48 Monaten "
        "Laufzeit anbieten?\n",
        working_minutes_ago=200,
    ),
    DemoInquiry(
        key="service",
        sender="Website Autohaus Demo <formular@demo.example>",
        subject="Servicetermin: Inspektion Passat",
        body="Name: Georg Huber\nE-Mail: georg.huber@kunden.example\nTelefon: 08031 98765\n"
        "Marke: Volkswagen\nModell: Passat Variant\n\n"
        "Nachricht: Ich brauche einen Werkstatt-Termin für die Inspektion, gern mit Ersatzwagen.\n",
        working_minutes_ago=120,
    ),
    DemoInquiry(
        key="html-only",
        # A car maker's lead system: HTML only, a lead number and a response deadline.
        sender="Volkswagen Lead Management <leads@vw-partnernet.example>",
        subject="Neuer Lead aus dem Volkswagen Lead Management: Golf GTE",
        body="<html><body><h1>Volkswagen Lead Management &ndash; neuer Lead</h1><table>"
        "<tr><th>Vorgangsnummer:</th><td>VW-DE-55012345</td></tr>"
        "<tr><th>Anfrageart:</th><td>Angebotsanfrage</td></tr>"
        "<tr><th>Name:</th><td>Olga Petrova</td></tr>"
        "<tr><th>E-Mail:</th><td>olga.petrova@kunden.example</td></tr>"
        "<tr><th>Telefon:</th><td>0621 334455</td></tr>"
        "<tr><th>Marke:</th><td>Volkswagen</td></tr>"
        "<tr><th>Modell:</th><td>Golf GTE</td></tr></table>"
        "<p>Bitte nehmen Sie innerhalb von 2 Stunden Kontakt mit der Interessentin auf.</p>"
        "<p>Nachricht: Bitte senden Sie mir ein Angebot f&uuml;r den Golf GTE &ndash; "
        "gern mit Wallbox.</p></body></html>",
        working_minutes_ago=100,
        html=True,
    ),
    DemoInquiry(
        key="windows-1252",
        # Older form mailers still write Windows-1252, quoted-printable (€ is =80 there).
        sender="Website Autohaus Demo <formular@demo.example>",
        subject="Anfrage Gebrauchtwagen",
        body="Name: Jürgen Weiß\nE-Mail: juergen.weiss@kunden.example\nTelefon: 0911 776655\n"
        "Modell: Audi A4 Avant\nPreis: 12.500 €\n\n"
        "Nachricht: Ist der Wagen unfallfrei? Schöne Grüße aus Fürth.\n",
        working_minutes_ago=60,
        charset="windows-1252",
    ),
    DemoInquiry(
        key="kleinanzeigen",
        # Kleinanzeigen: a per-conversation relay address, the ad title in the subject.
        sender="Sabine Krause über Kleinanzeigen <interessent-7c3e9a21@mail.kleinanzeigen.de>",
        subject='Nutzer-Anfrage zu Ihrer Kleinanzeige "Opel Corsa 1.2 Edition"',
        body="<html><body><h1>Anfrage zu Ihrer Kleinanzeige</h1>"
        "<p>Anzeigennummer: 2741118263</p>"
        "<p><b>Nachricht von:</b> Sabine Krause</p>"
        "<p>Hallo, ist der Corsa noch da? Ich könnte morgen Nachmittag vorbeikommen.</p>"
        "<p>Bitte antworte über die Antworten-Funktion deines E-Mail-Programms.</p>"
        "</body></html>",
        working_minutes_ago=30,
        html=True,
    ),
)


def _inquiry_mail(inquiry: DemoInquiry, arrived: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = inquiry.sender
    if inquiry.reply_to:
        msg["Reply-To"] = inquiry.reply_to
    msg["To"] = LEAD_ADDRESS
    msg["Subject"] = inquiry.subject
    msg["Date"] = format_datetime(arrived)
    msg["Message-ID"] = f"<demo-{inquiry.key}@demo-sources.example>"
    if inquiry.html:
        msg.set_content(inquiry.body, subtype="html")
    elif inquiry.charset != "utf-8":
        msg.set_content(inquiry.body, charset=inquiry.charset, cte="quoted-printable")
    else:
        msg.set_content(inquiry.body)
    return msg.as_bytes(policy=policy.SMTP)


def _demo_calendar() -> WorkingCalendar:
    """The demo dealership's opening hours and holidays (from its own settings document)."""
    return config_from_document(validate(tomllib.loads(DEMO_SETTINGS_TOML))).calendar


def arrival(inquiry: DemoInquiry, now: datetime, calendar: WorkingCalendar) -> datetime:
    """When the inquiry came in: its working-time age before ``now``, to the minute."""
    moment = calendar.subtract_working_time(now, timedelta(minutes=inquiry.working_minutes_ago))
    return moment.replace(second=0, microsecond=0)


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
    """The inquiries (dated when they arrived), a bounce and an out-of-office reply."""
    calendar = _demo_calendar()
    mails = [_inquiry_mail(inquiry, arrival(inquiry, now, calendar)) for inquiry in INQUIRIES]
    return [*mails, _bounce(now), _out_of_office(now)]


def _ensure_demo_settings(session: Session, base_url: str) -> None:
    """Import the demo settings once; later edits in the web UI are kept on re-seeding."""
    stored = session.get(DealerSetting, "dealer")
    if stored is None:
        import_settings(session, demo_settings_toml(base_url))
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


def web_address(settings: Settings) -> str:
    """The web UI's address as configured (a wildcard listen address is reached locally)."""
    host = settings.web.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104  # nosec B104  # compared, not bound
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.web.port}"


def seed_demo(
    factory: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> dict[str, int]:
    """Seed the demo dealership and run its mails through the pipeline; safe to repeat.

    Each inquiry is stored and processed at the moment it arrived, in order, so
    the rotation, the due times and the protocol read as if the days had passed;
    then the salespeople's part of the story is played (:data:`STORY`).  Returns
    how many of the demo mails are in each inbound status, e.g.
    ``{"discarded": 2, "processed": 11}`` (the same on every run).
    """
    now = now or utcnow()
    calendar = _demo_calendar()
    inquiries = sorted(INQUIRIES, key=lambda inquiry: arrival(inquiry, now, calendar))
    mails = demo_mails(now)
    ids = [extract_message_id(raw) for raw in mails]
    with session_scope(factory) as session:
        _ensure_demo_settings(session, web_address(settings))
        known = set(session.scalars(select(InboundMail.message_id).where(_demo_mail(ids))))
    me = worker_identity()
    new_leads: dict[str, int] = {}
    for inquiry in inquiries:
        arrived = arrival(inquiry, now, calendar)
        raw = _inquiry_mail(inquiry, arrived)
        if extract_message_id(raw) in known:
            continue
        stored = store_raw(
            factory, raw, channel="demo", envelope_to=[LEAD_ADDRESS], received_at=arrived
        )
        process_ids(
            factory, claim_ids(factory, [stored.id], me, settings.worker, arrived), me, arrived
        )
        with factory() as session:
            lead_id = session.scalar(select(Lead.id).where(Lead.inbound_id == stored.id))
        if lead_id is not None:
            new_leads[inquiry.key] = lead_id
    for raw, message_id in zip(mails[len(INQUIRIES) :], ids[len(INQUIRIES) :], strict=True):
        if message_id not in known:
            store_raw(factory, raw, channel="demo", envelope_to=[LEAD_ADDRESS])
    process_pending(factory, settings)
    _play_story(factory, new_leads, now, calendar)
    log.info(
        "demo: %d new leads; log in as admin@demo.example (password %r) or any demo user",
        len(new_leads),
        DEMO_PASSWORD,
    )
    with factory() as session:
        rows = session.execute(
            select(InboundMail.status, func.count())
            .where(_demo_mail(ids))
            .group_by(InboundMail.status)
        )
        return {status: count for status, count in sorted(rows.all())}


def _play_story(
    factory: sessionmaker[Session], leads: dict[str, int], now: datetime, calendar: WorkingCalendar
) -> None:
    """What the salespeople did since: took leads from the pool, called, won one, lost one, put
    one aside for a resubmission; the workshop inquiry still waits in the pool.

    Played only on leads this run created (a second run finds them played), each step at
    its own moment in the past, through the same domain actions the lead page uses.
    """
    with session_scope(factory) as session:

        def later(key: str, minutes: int) -> datetime:
            """``minutes`` of working time after the lead arrived."""
            lead = session.get(Lead, leads[key])
            assert lead is not None  # noqa: S101  # seeded above
            return calendar.add_working_time(lead.received_at, timedelta(minutes=minutes))

        dealer = load_dealer_config(session)
        takers = ("lena.verkauf@demo.example", "tom.handel@demo.example")
        for turn, key in enumerate(key for key in leads if key != "service"):
            # Everything but the workshop inquiry is taken from the pool minutes after it came.
            take_from_pool(session, dealer, leads[key], takers[turn % 2], later(key, 4))

        def owner(key: str) -> str:
            lead = session.get(Lead, leads[key])
            assert lead is not None and lead.assignee is not None  # noqa: S101  # seeded above
            return lead.assignee.email

        if "autoscout24" in leads:  # lost: the customer bought elsewhere
            who = owner("autoscout24")
            log_contact(
                session,
                leads["autoscout24"],
                who,
                later("autoscout24", 40),
                "phone",
                "Preis besprochen, Kunde vergleicht noch",
                dealer=dealer,
            )
            close_lead(
                session, leads["autoscout24"], who, later("autoscout24", 9 * 60), "bought_elsewhere"
            )
        if "website-de" in leads:  # won: a hot lead, called back, sold
            who = owner("website-de")
            set_qualification(
                session, dealer, leads["website-de"], who, later("website-de", 20), "hot"
            )
            log_contact(
                session,
                leads["website-de"],
                who,
                later("website-de", 60),
                "phone",
                "Rückruf nach 17 Uhr, Termin für Donnerstag",
                dealer=dealer,
            )
            close_lead(session, leads["website-de"], who, later("website-de", 2 * 9 * 60), "sold")
        if "website-en" in leads:  # resubmission: the customer moves next month
            who = owner("website-en")
            log_contact(
                session,
                leads["website-en"],
                who,
                later("website-en", 90),
                "email",
                "Customer moves to Munich next month; call again then",
                dealer=dealer,
            )
            again = calendar.add_working_time(now, timedelta(hours=6))
            set_resubmission(
                session, dealer, leads["website-en"], who, later("website-en", 95), again
            )
        if "test-drive" in leads:  # tried, not reached: a follow-up is due
            who = owner("test-drive")
            log_contact(
                session,
                leads["test-drive"],
                who,
                later("test-drive", 45),
                "phone",
                "Mailbox, keine Nachricht hinterlassen",
                outcome="not_reached",
                dealer=dealer,
            )
        if "html-only" in leads:  # the car maker's lead: hot at once
            who = owner("html-only")
            set_qualification(
                session, dealer, leads["html-only"], who, later("html-only", 5), "hot"
            )


def _demo_mail(message_ids: list[str | None]) -> ColumnElement[bool]:
    return InboundMail.message_id.in_([mid for mid in message_ids if mid])
