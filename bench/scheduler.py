"""Scheduler benchmark: one escalation pass over 100,000 open leads, 1,000 of them due.

Measured in one run, on SQLite and (with ``--postgres URL`` or
``MAILGATE_TEST_DATABASE_URL``) PostgreSQL, on the same generated leads:

(a) baseline: the bare indexed ``SELECT .. WHERE next_due_at <= now`` that
    finds the due leads — the least any scheduler must do;
(b) ``mailgate.escalation.scheduler.tick``: claim, compare-and-set every lead,
    enqueue 1,000 reminder mails (rendered later by the sender), protocol.

Prints seconds for both and the ratio; target: (b) under 1 s.

    python bench/scheduler.py [--leads 100000] [--due 1000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from mailgate import db
from mailgate.dealer_settings import import_settings
from mailgate.escalation.scheduler import tick
from mailgate.models import Lead, OutboxMail, User

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 30, 9, 30, tzinfo=BERLIN)
DEALER = """
[dealer]
addresses = ["leads@autohaus.example"]
admin_address = "admin@autohaus.example"
[hours]
mon = ["08:00-18:00"]
tue = ["08:00-18:00"]
wed = ["08:00-18:00"]
thu = ["08:00-18:00"]
fri = ["08:00-18:00"]
[[users]]
email = "anna@autohaus.example"
name = "Anna Schmidt"
supervisor = "chef@autohaus.example"
[[users]]
email = "chef@autohaus.example"
name = "Carl Chef"
role = "supervisor"
"""


def populate(factory, total: int, due: int) -> None:  # type: ignore[no-untyped-def]
    with db.session_scope(factory) as session:
        import_settings(session, DEALER)
        anna = session.scalar(select(User.id).where(User.email == "anna@autohaus.example"))
    received = NOW - timedelta(days=3)
    for start in range(0, total, 10_000):
        rows = []
        for n in range(start, min(total, start + 10_000)):
            soon = NOW - timedelta(minutes=30) if n < due else NOW + timedelta(days=1 + n % 30)
            rows.append(
                {
                    "dedupe_key": f"bench-{n}",
                    "assignee_id": anna,
                    "status": "assigned",
                    "vehicle": {},
                    "warnings": [],
                    "reply_token": uuid.uuid4().hex,
                    "received_at": received,
                    "created_at": received,
                    "last_activity_at": received,
                    "soon_at": soon,
                    "overdue_at": soon + timedelta(hours=1),
                    "stage2_at": soon + timedelta(hours=25),
                    "next_due_at": soon,
                    "escalation_stage": 0,
                }
            )
        with db.session_scope(factory) as session:
            session.execute(insert(Lead.__table__), rows)


def measure(url: str, total: int, due: int) -> tuple[float, float, int]:
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    factory = db.make_session_factory(engine)
    populate(factory, total, due)
    started = time.perf_counter()
    with factory() as session:
        found = session.execute(
            select(Lead.id).where(Lead.next_due_at <= NOW).order_by(Lead.next_due_at)
        ).all()
    bare = time.perf_counter() - started
    assert len(found) == due, len(found)
    started = time.perf_counter()
    report = tick(factory, now=NOW)
    ours = time.perf_counter() - started
    with factory() as session:
        queued = session.scalar(select(func.count()).select_from(OutboxMail)) or 0
    assert report.mails["reminder"] == due == queued, (report.as_dict(), queued)
    engine.dispose()
    return bare, ours, queued


def scratch_postgres(url: str) -> tuple[str, callable]:  # type: ignore[valid-type]
    admin = db.create_db_engine(url, pool_size=1)
    name = f"mailgate_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--postgres", default=os.environ.get("MAILGATE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    targets = [("SQLite", f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite3'}", None)]
    if args.postgres:
        url, drop = scratch_postgres(args.postgres)
        targets.append(("PostgreSQL", url, drop))
    print(f"{args.leads} open leads, {args.due} due; one tick (target < 1 s)")
    for label, url, cleanup in targets:
        try:
            bare, ours, queued = measure(url, args.leads, args.due)
        finally:
            if cleanup:
                cleanup()
        print(
            f"{label:10} bare indexed SELECT {bare * 1000:7.1f} ms | tick {ours * 1000:7.1f} ms "
            f"({queued} mails queued) | tick/bare {ours / bare:6.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
