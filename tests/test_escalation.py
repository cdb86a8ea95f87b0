"""Escalation end to end with a pinned clock: ingest, advance time, read the outbox."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import Settings
from mailgate.dealer_settings import import_settings
from mailgate.escalation.scheduler import tick
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, Lead, OutboxMail, ProtocolEntry, User
from mailgate.outbound.send import send_pass
from mailgate.worker import process_pending

from .conftest import DEALER_TOML
from .mails import inquiry

BERLIN = ZoneInfo("Europe/Berlin")
ESCALATING_DEALER = (
    DEALER_TOML
    + """
[hours]
mon = ["08:00-18:00"]
tue = ["08:00-18:00"]
wed = ["08:00-18:00"]
thu = ["08:00-18:00"]
fri = ["08:00-18:00"]

[holidays]
country = "DE"
subdivision = "BY"

[escalation]
stage1 = "4h"
reminder_before = "1h"
stage2 = "24h"
"""
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def setup(factory: sessionmaker[Session]) -> None:
    with db.session_scope(factory) as session:
        import_settings(session, ESCALATING_DEALER)


def ingest_at(factory: sessionmaker[Session], received: datetime, n: int = 1) -> int:
    """Store an inquiry as if it arrived at ``received`` and process it; returns the lead id."""
    stored = store_raw(factory, inquiry(n), channel="smtp", envelope_to=["leads@autohaus.example"])
    with db.session_scope(factory) as session:
        session.execute(
            update(InboundMail).where(InboundMail.id == stored.id).values(received_at=received)
        )
    process_pending(factory, Settings())
    with factory() as session:
        lead_id = session.scalar(select(Lead.id).where(Lead.inbound_id == stored.id))
        assert lead_id is not None
        return lead_id


def mails(factory: sessionmaker[Session], lead_id: int) -> list[tuple[str, list[str], datetime]]:
    with factory() as session:
        rows = session.execute(
            select(OutboxMail.purpose, OutboxMail.recipients, OutboxMail.send_after)
            .where(OutboxMail.lead_id == lead_id, OutboxMail.purpose != "notification")
            .order_by(OutboxMail.id)
        ).all()
    return [(p, list(r), s) for p, r, s in rows]


def test_friday_afternoon_lead_climbs_the_ladder(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-27 16:00"))
    with dealer() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert lead.overdue_at == at("2026-11-30 10:00")
        assert lead.soon_at == at("2026-11-30 09:00")
        assert lead.stage2_at == at("2026-12-01 10:00")
    for moment in ("2026-11-27 17:59", "2026-11-28 12:00", "2026-11-30 08:59"):
        tick(dealer, now=at(moment))
    assert mails(dealer, lead_id) == []
    tick(dealer, now=at("2026-11-30 09:00"))
    assert mails(dealer, lead_id) == [
        ("reminder", ["anna@autohaus.example"], at("2026-11-30 09:00"))
    ]
    tick(dealer, now=at("2026-11-30 09:30"))  # nothing new is due
    tick(dealer, now=at("2026-11-30 10:00"))
    tick(dealer, now=at("2026-12-01 10:00"))
    tick(dealer, now=at("2026-12-01 10:05"))
    assert [(p, r) for p, r, _ in mails(dealer, lead_id)] == [
        ("reminder", ["anna@autohaus.example"]),
        ("stage1", ["anna@autohaus.example"]),
        ("stage2", ["chef@autohaus.example"]),
    ]
    send_pass(dealer, Settings(), now=at("2026-12-01 10:06"))  # no relay: rendered, suppressed
    with dealer() as session:
        raw = session.scalar(
            select(OutboxMail.raw).where(
                OutboxMail.purpose == "stage2", OutboxMail.lead_id == lead_id
            )
        )
        protocol = session.scalars(
            select(ProtocolEntry.action).where(ProtocolEntry.lead_id == lead_id)
        ).all()
    assert raw is not None and f"[Lead {lead_id}]".encode() in raw
    assert b"Anna Schmidt" in raw and b"In-Reply-To: <" in raw
    assert {"reminder", "stage1", "stage2"} <= set(protocol)


def test_supervisor_mail_waits_for_monday_morning(dealer: sessionmaker[Session]) -> None:
    """Stage 1 Friday 17:00, stage 2 due Saturday 17:00: the supervisor hears Monday 08:00."""
    setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-27 13:00"))
    tick(dealer, now=at("2026-11-27 17:00"))  # stage 1 (the reminder is stale by now)
    for moment in ("2026-11-28 17:00", "2026-11-29 10:00", "2026-11-30 07:59"):
        assert tick(dealer, now=at(moment)).closed
    tick(dealer, now=at("2026-11-30 08:00"))
    assert [(p, s) for p, _, s in mails(dealer, lead_id)] == [
        ("stage1", at("2026-11-27 17:00")),
        ("stage2", at("2026-11-30 08:00")),
    ]


def test_catch_up_after_downtime_skips_the_stale_reminder(dealer: sessionmaker[Session]) -> None:
    """After downtime the stale reminder is skipped; stage 2 counts from the late stage-1 mail.

    Seed 002: stage 2 is "der Zeitraum zwischen der Eskalation einer Anfrage beim
    Verkäufer und der Information / Eskalation an einen Vorgesetzten" (issue 20 #3:
    this test used to expect the supervisor mail in the same pass).
    """
    setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-27 16:00"))
    report = tick(dealer, now=at("2026-12-01 11:00"))  # down from Friday until Tuesday 11:00
    assert [p for p, _, _ in mails(dealer, lead_id)] == ["stage1"]
    assert report.mails == {"stage1": 1}
    tick(dealer, now=at("2026-12-02 10:59"))  # 24 h after the stage-1 mail: not yet
    assert [p for p, _, _ in mails(dealer, lead_id)] == ["stage1"]
    tick(dealer, now=at("2026-12-02 11:00"))
    assert [p for p, _, _ in mails(dealer, lead_id)] == ["stage1", "stage2"]


def test_a_response_stops_the_ladder(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-27 16:00"))
    with db.session_scope(dealer) as session:
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(first_response_at=at("2026-11-30 08:30"))
        )
    tick(dealer, now=at("2026-12-02 10:00"))
    assert mails(dealer, lead_id) == []


def test_missing_supervisor_falls_back_to_admin(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    with db.session_scope(dealer) as session:
        session.execute(update(User).values(supervisor_email=None))
    lead_id = ingest_at(dealer, at("2026-11-27 16:00"))
    tick(dealer, now=at("2026-12-01 11:00"))  # stage 1; stage 2 counts from this mail
    tick(dealer, now=at("2026-12-02 11:00"))
    assert mails(dealer, lead_id)[-1][:2] == ("stage2", ["admin@autohaus.example"])


def test_two_schedulers_never_send_twice(
    dealer: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    """Two ``mailgate tick`` processes on one database over many due leads: no duplicates."""
    setup(dealer)
    count = 10_000 if db_url.startswith("postgresql") else 1_000
    _bulk_leads(dealer, count)
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[log]\nlevel = "WARNING"\n')
    command = [sys.executable, "-m", "mailgate", "tick", "--config", str(config)]
    command += ["--now", "2026-11-30T09:30:00+01:00"]
    procs = [subprocess.Popen(command, stderr=subprocess.PIPE) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    with dealer() as session:
        per_lead = session.execute(
            select(OutboxMail.lead_id, func.count())
            .where(OutboxMail.purpose == "reminder")
            .group_by(OutboxMail.lead_id)
        ).all()
        entries = session.scalar(select(func.count()).where(ProtocolEntry.action == "reminder"))
    assert len(per_lead) == count and all(n == 1 for _, n in per_lead)
    assert entries == count


def _bulk_leads(factory: sessionmaker[Session], count: int) -> None:
    """``count`` open leads of Anna's, all with their reminder due at Monday 09:00."""
    with db.session_scope(factory) as session:
        anna = session.scalar(select(User.id).where(User.email == "anna@autohaus.example"))
        rows = [
            {
                "dedupe_key": f"bulk-{n}",
                "assignee_id": anna,
                "status": "assigned",
                "vehicle": {},
                "warnings": [],
                "reply_token": f"token-{n}",
                "received_at": at("2026-11-27 16:00"),
                "created_at": at("2026-11-27 16:00"),
                "last_activity_at": at("2026-11-27 16:00"),
                "soon_at": at("2026-11-30 09:00"),
                "overdue_at": at("2026-11-30 10:00"),
                "stage2_at": at("2026-12-01 10:00"),
                "next_due_at": at("2026-11-30 09:00"),
                "escalation_stage": 0,
            }
            for n in range(count)
        ]
        session.execute(insert(Lead.__table__), rows)
