"""Reports benchmark: the report over twelve weeks of a busy dealership (SQLite).

Measured in one run on the same generated leads:

(a) baseline: the bare ``SELECT`` of the columns the report reads for the range;
(b) ``build_report`` asking the dealer's calendar lead by lead (every lead
    walks the days again: holidays, time zones);
(c) ``build_report`` as the page runs it (:class:`WorkClock`: the range's
    opening intervals laid out once, answers by binary search).

Prints seconds and the ratios to (a); target: (c) within 5 x (a), i.e. the
working-time arithmetic costs less than fetching the rows several times over.

    python bench/reports.py [--leads 10000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, true

from mailgate import db
from mailgate.dealer_settings import import_settings, load_dealer_config
from mailgate.models import Lead, User
from mailgate.webui.reports import data

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=BERLIN)
START, END = date(2026, 9, 7), date(2026, 11, 30)
DEALER = """
[dealer]
addresses = ["leads@autohaus.example"]
[hours]
mon = ["08:00-12:00", "13:00-18:00"]
tue = ["08:00-12:00", "13:00-18:00"]
wed = ["08:00-12:00", "13:00-18:00"]
thu = ["08:00-12:00", "13:00-18:00"]
fri = ["08:00-12:00", "13:00-18:00"]
sat = ["09:00-13:00"]
[holidays]
country = "DE"
subdivision = "BY"
""" + "".join(
    f'[[users]]\nemail = "verkauf{i}@autohaus.example"\nname = "Verkauf {i}"\n' for i in range(12)
)
SOURCES = ("mobile.de", "autoscout24", "website", "vw-portal", "phone")
KINDS = ("inquiry", "test_drive", "trade_in", "financing")


def populate(factory, count: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    with db.session_scope(factory) as session:
        import_settings(session, DEALER)
        users = session.scalars(select(User.id)).all()
        rows = []
        for n in range(count):
            received = NOW - timedelta(minutes=rng.randint(0, 83 * 24 * 60))
            answered = received + timedelta(minutes=rng.randint(5, 3000)) if n % 7 else None
            rows.append(
                {
                    "dedupe_key": f"bench-{n}",
                    "reply_token": f"bench-{n}",
                    "assignee_id": users[n % len(users)],
                    "source": SOURCES[n % len(SOURCES)],
                    "kind": KINDS[n % len(KINDS)],
                    "status": "closed" if n % 3 == 0 else "contacted",
                    "close_reason": ("sold", "no_interest", "duplicate")[n % 3 // 1 % 3]
                    if n % 3 == 0
                    else None,
                    "received_at": received,
                    "created_at": received,
                    "last_activity_at": received,
                    "first_response_at": answered,
                }
            )
        session.execute(insert(Lead), rows)


def timed(run) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.create_db_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        db.upgrade(engine)
        factory = db.make_session_factory(engine)
        populate(factory, args.leads)
        with factory() as session:
            config = load_dealer_config(session)
            first, last = data.local_bounds(config, START, END)

            def baseline() -> None:
                session.execute(
                    select(Lead.received_at, Lead.source, Lead.kind, Lead.first_response_at).where(
                        Lead.received_at >= first, Lead.received_at < last
                    )
                ).all()

            def report() -> None:
                data.build_report(session, config, true(), START, END, NOW, set())

            clock = data.WorkClock
            a = timed(baseline)
            data.WorkClock = lambda calendar, first, last: calendar  # type: ignore[assignment,misc]
            b = timed(report)
            data.WorkClock = clock  # type: ignore[misc]
            c = timed(report)
        engine.dispose()
    print(f"{args.leads} leads in twelve weeks (SQLite)")
    print(f"(a) bare SELECT            {a:8.3f} s")
    print(f"(b) report, calendar per lead {b:8.3f} s  ({b / a:5.1f} x a)")
    print(f"(c) report, WorkClock        {c:8.3f} s  ({c / a:5.1f} x a)  target < 5 x a")


if __name__ == "__main__":
    main()
