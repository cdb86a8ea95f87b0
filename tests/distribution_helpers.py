"""Shared set-up for the distribution tests: a sales team and form mails (.example only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.db import session_scope
from mailgate.dealer_settings import import_settings
from mailgate.ingest.store import store_raw
from mailgate.models import Lead, OutboxMail, ProtocolEntry
from mailgate.worker import process_pending

TODAY = datetime.now(ZoneInfo("Europe/Berlin")).date()
UNTIL = (TODAY + timedelta(days=3)).isoformat()
SINCE = (TODAY - timedelta(days=1)).isoformat()
SETTINGS = Settings()


def team_toml(distribution: str = "", users: dict[str, str] | None = None, extra: str = "") -> str:
    """Anna, Ben, Carl sell; Chef supervises (fallback user); Ada administers.

    ``users`` adds TOML lines to a user's table, e.g. ``{"ben": "absences = [...]"}``.
    """
    users = users or {}
    people = [
        ("anna", "Anna Schmidt", "salesperson", 'locations = ["muenchen"]'),
        ("ben", "Ben Berger", "salesperson", 'locations = ["muenchen"]'),
        ("carl", "Carl Clausen", "salesperson", 'locations = ["augsburg"]'),
        ("chef", "Chris Chef", "supervisor", "receives_leads = false"),
        ("ada", "Ada Admin", "admin", "receives_leads = false\ncan_be_assigned = false"),
    ]
    blocks = []
    for key, name, role, lines in people:
        blocks.append(
            f'[[users]]\nemail = "{key}@autohaus.example"\nname = "{name}"\nrole = "{role}"\n'
            f'supervisor = "chef@autohaus.example"\n{lines}\n{users.get(key, "")}\n'
        )
    return (
        '[dealer]\nname = "Autohaus Beispiel"\ntimezone = "Europe/Berlin"\n'
        'addresses = ["leads@autohaus.example", "augsburg@autohaus.example"]\n'
        'admin_address = "ada@autohaus.example"\n'
        'base_url = "https://leads.autohaus.example"\n\n'
        '[distribution]\nfallback_user = "chef@autohaus.example"\n'
        'trade_in_cc = "ankauf@autohaus.example"\n'
        'locations = { muenchen = ["leads@autohaus.example"], '
        'augsburg = ["augsburg@autohaus.example"] }\n'
        f"{distribution}\n\n" + "\n".join(blocks) + extra
    )


def absent(substitute: str = "") -> str:
    sub = f', substitute = "{substitute}@autohaus.example"' if substitute else ""
    return f'absences = [{{ from = "{SINCE}", until = "{UNTIL}"{sub} }}]'


def setup(factory: sessionmaker[Session], text: str) -> None:
    with session_scope(factory) as session:
        import_settings(session, text)


def form_mail(
    n: int,
    *,
    name: str | None = None,
    email: str | None = None,
    subject: str = "Anfrage zu Ihrem Fahrzeug",
    vehicle: bool = True,
    message: str = "Ist das Fahrzeug noch da?",
    to: str = "leads@autohaus.example",
    vehicle_location: str | None = None,
) -> bytes:
    """A website form mail; each n is another customer unless name/email are given."""
    msg = EmailMessage()
    msg["From"] = "Website Autohaus <noreply@autohaus-web.example>"
    msg["To"] = to
    msg["Subject"] = f"{subject} #{n}"
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<form-{n}@autohaus-web.example>"
    lines = [
        f"Name: {name or f'Kundin Nummer{n}'}",
        f"E-Mail: {email or f'person{n}@kunden.example'}",
    ]
    if vehicle:
        lines += ["Marke: Opel", "Modell: Astra"]
    if vehicle_location:
        lines.append(f"Fahrzeugstandort: {vehicle_location}")
    lines.append(f"Nachricht: {message}")
    msg.set_content("\n".join(lines) + "\n")
    return msg.as_bytes(policy=policy.SMTP)


def ingest(
    factory: sessionmaker[Session],
    *mails: bytes,
    to: str = "leads@autohaus.example",
    expect: str = "processed",
) -> None:
    for raw in mails:
        store_raw(
            factory,
            raw,
            channel="smtp",
            envelope_from="form@autohaus-web.example",
            envelope_to=[to],
        )
    report = process_pending(factory, SETTINGS)
    assert report.statuses == {expect: len(mails)}, report.statuses


def leads(factory: sessionmaker[Session]) -> list[Lead]:
    with factory() as session:
        found = list(session.scalars(select(Lead).order_by(Lead.id)))
        for lead in found:
            _ = lead.assignee, lead.protocol  # load while the session is open
        return found


def owners(factory: sessionmaker[Session]) -> list[str | None]:
    return [lead.assignee.email.split("@")[0] if lead.assignee else None for lead in leads(factory)]


def outbox(factory: sessionmaker[Session]) -> list[OutboxMail]:
    with factory() as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def protocol(factory: sessionmaker[Session], lead_id: int) -> list[tuple[str, str]]:
    with factory() as session:
        rows = session.scalars(
            select(ProtocolEntry).where(ProtocolEntry.lead_id == lead_id).order_by(ProtocolEntry.id)
        )
        return [(p.action, p.detail) for p in rows]
