"""Web UI benchmark: the lead list and the detail page at 100,000 leads in SQLite.

Generates a dealership (20 salespeople in two teams, a pool) with realistic
customers and vehicles by bulk INSERTs (the ``lead_search`` triggers index
them as they would in production), then requests pages through the WSGI app
(Flask test client, logged in by the real login form) as an admin and as a
salesperson, and reports p50/p95 of:

- the list: default, filtered (open test drives, overdue), searched (a common
  surname; a phone number in another notation);
- the detail page ``/leads/<id>`` (whatever the detail area renders);
- the supervisor overview ``/overview/`` as the admin (every lead) and as a supervisor
  (a team of ten and the pool), with today's escalations in the protocol;

each printed beside the bare SQL the page needs (count + page of ids for the
list, the lead row for the detail), timed in the same process on the same
database.  Targets: p95 < 150 ms list, < 100 ms detail.

    python bench/webui.py [--leads 100000] [--runs 40]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, insert, select, true
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import Settings
from mailgate.dealer_settings import import_settings
from mailgate.models import Customer, Lead, ProtocolEntry, User
from mailgate.webui import create_app
from mailgate.webui.leads.filters import parse
from mailgate.webui.leads.query import conditions, order_by
from mailgate.webui.leads.views import COUNT_CAP
from mailgate.webui.passwords import hash_password

PASSWORD = "Bench-Passwort-2026"
FIRST = "Anna Bernd Claudia Dieter Eva Frank Gisela Hans Ines Jürgen Katrin Lars Maria Nils Olga Peter Ruth Stefan Tanja Uwe Vera Werner Yvonne Zoe".split()  # noqa: E501
LAST = "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann".split()  # noqa: E501
VEHICLES = [
    ("Volkswagen", "Golf 8"),
    ("Volkswagen", "Tiguan"),
    ("Opel", "Astra"),
    ("BMW", "320d Touring"),
    ("Audi", "A4 Avant"),
    ("Škoda", "Octavia Combi"),
    ("Mercedes-Benz", "C 200"),
    ("Ford", "Focus"),
    ("Toyota", "Yaris Hybrid"),
    ("Hyundai", "i30"),
]
SOURCES = ["mobile.de", "autoscout24", "website", "oem:vw", "kleinanzeigen", "unknown"]
KINDS = ["inquiry"] * 5 + ["test_drive"] * 2 + ["trade_in", "financing", "service"]
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def dealer_toml(salespeople: int) -> str:
    users = [
        '[[users]]\nemail = "ada@autohaus.example"\nname = "Ada Admin"\nrole = "admin"\n'
        "receives_leads = false\n",
        '[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n',
    ]
    for team in (1, 2):
        users.append(
            f'[[users]]\nemail = "chef{team}@autohaus.example"\nname = "Chef {team}"\n'
            'role = "supervisor"\nreceives_leads = false\n'
        )
    for n in range(salespeople):
        users.append(
            f'[[users]]\nemail = "verkauf{n}@autohaus.example"\nname = "Verkauf {n}"\n'
            f'supervisor = "chef{n % 2 + 1}@autohaus.example"\n'
        )
    return (
        '[dealer]\nname = "Autohaus Bench"\ntimezone = "Europe/Berlin"\n'
        'addresses = ["leads@autohaus.example"]\nadmin_address = "ada@autohaus.example"\n\n'
        '[distribution]\npool_user = "pool@autohaus.example"\n\n' + "\n".join(users)
    )


def populate(factory: sessionmaker[Session], total: int, seed: int = 7) -> dict[str, int]:
    """``total`` leads with customers; returns the ids of the users by e-mail."""
    rnd = random.Random(seed)
    with db.session_scope(factory) as session:
        import_settings(session, dealer_toml(20))
        hashed = hash_password(PASSWORD)
        for user in session.scalars(select(User)):
            user.password_hash = hashed
        users = {u.email: u.id for u in session.scalars(select(User))}
    owners = [uid for email, uid in users.items() if email.startswith("verkauf")]
    owners += [users["pool@autohaus.example"]] * 2
    now = datetime.now(UTC)
    for start in range(0, total, 5_000):
        customers, leads = [], []
        for n in range(start, min(total, start + 5_000)):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            mobile = f"+4917{rnd.randint(0, 9)}{rnd.randint(1_000_000, 9_999_999)}"
            customers.append(
                {
                    "id": n + 1,
                    "name": f"{first} {last}",
                    "first_name": first,
                    "last_name": last,
                    "email": f"{first.lower()}.{last.lower()}{n}@kunden.example",
                    "phone": f"0{mobile[3:6]} {mobile[6:]}",
                    "phone_e164": mobile,
                    "city": rnd.choice(["München", "Augsburg", "Freising", "Dachau"]),
                    "created_at": now,
                }
            )
            make, model = rnd.choice(VEHICLES)
            received = now - timedelta(minutes=rnd.randint(1, 60 * 24 * 730))
            status = rnd.choices(
                ["new", "assigned", "contacted", "closed", "deleted"], [5, 40, 25, 28, 2]
            )[0]
            soon = received + timedelta(hours=rnd.randint(1, 72))
            leads.append(
                {
                    "id": n + 1,
                    "dedupe_key": f"bench-{n}",
                    "reply_token": uuid.uuid4().hex,
                    "customer_id": n + 1,
                    "assignee_id": rnd.choice(owners),
                    "source": rnd.choice(SOURCES),
                    "kind": rnd.choice(KINDS),
                    "parser": "generic",
                    "confidence": round(rnd.uniform(0.1, 0.95), 2),
                    "subject": f"Anfrage zu {make} {model}",
                    "message": "Ist das Fahrzeug noch verfügbar? Bitte um Rückruf.",
                    "vehicle": {
                        "make": make,
                        "model": model,
                        "price": rnd.randrange(8_000, 65_000, 10),
                        "mileage": rnd.randrange(5, 180_000, 5),
                        "vin": "W" + "".join(rnd.choices(VIN_CHARS, k=16)),
                        "listing_id": str(rnd.randint(100_000_000, 999_999_999)),
                    },
                    "warnings": [] if rnd.random() > 0.05 else ["phone number not valid"],
                    "status": status,
                    "received_at": received,
                    "created_at": received,
                    "last_activity_at": received + timedelta(hours=rnd.randint(0, 48)),
                    "soon_at": soon,
                    "overdue_at": soon + timedelta(hours=1),
                    "stage2_at": soon + timedelta(hours=25),
                    "escalation_stage": rnd.choice([0, 0, 0, 1, 2, 10, 99]),
                    "category": "sales",
                }
            )
        with db.session_scope(factory) as session:
            session.execute(insert(Customer.__table__), customers)
            session.execute(insert(Lead.__table__), leads)
            session.execute(insert(ProtocolEntry.__table__), protocol_lines(leads, now, rnd))
    return users


def protocol_lines(
    leads: list[dict[str, Any]], now: datetime, rnd: random.Random
) -> list[dict[str, Any]]:
    """A received line per lead, and stage-1/stage-2 escalations for the overdue ones
    (a few of them today), so the overview's escalation count reads a full protocol."""
    lines: list[dict[str, Any]] = []
    for lead in leads:
        lines.append(
            {"lead_id": lead["id"], "at": lead["received_at"], "actor": "system",
             "action": "received", "detail": ""}
        )  # fmt: skip
        if lead["escalation_stage"] in (2, 3) or lead["overdue_at"] < now and rnd.random() < 0.3:
            at = lead["overdue_at"] if rnd.random() < 0.98 else now - timedelta(minutes=5)
            lines.append(
                {"lead_id": lead["id"], "at": min(at, now), "actor": "system",
                 "action": rnd.choice(["stage1", "stage2"]), "detail": ""}
            )  # fmt: skip
    return lines


def login(client: Any, email: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token[1]}
    )
    assert response.status_code == 302, f"login of {email} failed"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def timed(run: Callable[[], object], runs: int) -> tuple[float, float]:
    run()  # warm up caches and compiled statements
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def bare_list(
    factory: sessionmaker[Session], query: str, owners: list[int] | None
) -> Callable[[], object]:
    """The list page's own SQL: capped count and one page of ids, same conditions and order."""
    filters = parse(dict(p.split("=", 1) for p in query.split("&") if p))
    from zoneinfo import ZoneInfo

    def run() -> object:
        scope = Lead.assignee_id.in_(owners) if owners else true()
        where = and_(
            scope,
            *conditions(filters, now=datetime.now(UTC), zone=ZoneInfo("Europe/Berlin")),
        )
        with factory() as session:
            capped = select(Lead.id).where(where).limit(COUNT_CAP + 1).subquery()
            total = session.scalar(select(func.count()).select_from(capped))
            ids = session.scalars(
                select(Lead.id).where(where).order_by(*order_by(filters.sort)).limit(50)
            ).all()
        return total, ids

    return run


def bare_detail(factory: sessionmaker[Session], ids: list[int]) -> Callable[[], object]:
    cycle = iter(ids * 1000)

    def run() -> object:
        with factory() as session:
            return session.get(Lead, next(cycle), populate_existing=True)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--db", help="keep the generated database here and reuse it next time")
    args = parser.parse_args()
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "bench-webui.sqlite3"
    reuse = path.exists()
    engine = db.create_db_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    factory = db.make_session_factory(engine)
    started = time.perf_counter()
    if reuse:
        with factory() as session:
            users = {u.email: u.id for u in session.scalars(select(User))}
            args.leads = session.scalar(select(func.count()).select_from(Lead)) or 0
        print(f"reusing {path} ({args.leads} leads)")
    else:
        users = populate(factory, args.leads)
        print(f"{args.leads} leads generated in {time.perf_counter() - started:.1f} s (SQLite)")
    app = create_app(factory, Settings())
    seller = "verkauf3@autohaus.example"
    own = [users[seller], users["pool@autohaus.example"]]
    with factory() as session:
        sample = session.scalars(
            select(Lead.id).where(Lead.assignee_id == users[seller]).limit(args.runs)
        ).all()
        phone = session.scalar(
            select(Customer.phone).join(Lead).where(Lead.assignee_id == users[seller]).limit(1)
        )
    pages = [
        ("list, default", ""),
        ("list, filtered", "status=open&kind=test_drive&due=overdue"),
        ("list, searched name", "q=schäfer"),
        ("list, searched phone", f"q={phone}".replace(" ", "+")),
    ]
    print(f"{'page':24} {'as':12} {'p50 ms':>8} {'p95 ms':>8} | bare SQL p50 {'p95 ms':>8}")
    for who, email in (("admin", "ada@autohaus.example"), ("supervisor", "chef1@autohaus.example")):
        client = app.test_client()
        login(client, email)

        def overview(client: Any = client) -> None:
            response = client.get("/overview/")
            assert response.status_code == 200, response.status_code

        p50, p95 = timed(overview, args.runs)
        print(f"{'overview /overview/':24} {who:12} {p50:8.1f} {p95:8.1f} |")
    for who, email, owners in (
        ("admin", "ada@autohaus.example", None),
        ("salesperson", seller, own),
    ):
        client = app.test_client()
        login(client, email)
        for label, query in pages:
            path = "/leads" + (f"?{query}" if query else "")

            def get(path: str = path, client: Any = client) -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            p50, p95 = timed(get, args.runs)
            bare_query = query.replace("+", " ")
            b50, b95 = timed(bare_list(factory, bare_query, owners), args.runs)
            print(f"{label:24} {who:12} {p50:8.1f} {p95:8.1f} | {b50:12.1f} {b95:8.1f}")
        cycle = iter(list(sample) * 1000)

        def detail(client: Any = client, cycle: Any = cycle) -> None:
            response = client.get(f"/leads/{next(cycle)}")
            assert response.status_code == 200, response.status_code

        p50, p95 = timed(detail, args.runs)
        b50, b95 = timed(bare_detail(factory, list(sample)), args.runs)
        print(f"{'detail /leads/<id>':24} {who:12} {p50:8.1f} {p95:8.1f} | {b50:12.1f} {b95:8.1f}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
