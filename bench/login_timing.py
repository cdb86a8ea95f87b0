"""Login timing: does the answer's time tell which e-mail addresses have an account?

A wrong password for a known account costs one Argon2 verification; an unknown,
deactivated or password-less account is verified against a dummy hash with the
same parameters (mailgate.webui.passwords.verify_dummy).  This script logs in
wrongly through the real login form (Flask test client, SQLite in a temporary
directory) for each kind of address, interleaved so machine load hits all kinds
alike, and prints p50/p95 per kind and the ratio of the medians to the known
account's.  A ratio near 1.00 means the timing tells nothing; the unit tests
only assert that the dummy verification happens (times belong here).

Each attempt comes from its own client address, so the login throttle never
answers early.

    python bench/login_timing.py [--runs 40]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from mailgate import db
from mailgate.config import Settings
from mailgate.dealer_settings import import_settings
from mailgate.models import User
from mailgate.webui import create_app
from mailgate.webui.passwords import hash_password

KINDS = {
    "known": "anna@autohaus.example",
    "unknown": "niemand@autohaus.example",
    "deactivated": "ex@autohaus.example",
    "no password": "neu@autohaus.example",
}
SETTINGS = """
[dealer]
name = "Autohaus Bench"
addresses = ["leads@autohaus.example"]
[[users]]
email = "admin@autohaus.example"
role = "admin"
[[users]]
email = "anna@autohaus.example"
[[users]]
email = "ex@autohaus.example"
[[users]]
email = "neu@autohaus.example"
"""
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def seed(url: str) -> None:
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    factory = db.make_session_factory(engine)
    with db.session_scope(factory) as session:
        import_settings(session, SETTINGS)
        for user in session.scalars(select(User)):
            if user.email != KINDS["no password"]:
                user.password_hash = hash_password("Bench-Passwort-2026")
            user.active = user.email != KINDS["deactivated"]
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        seed(url)
        engine = db.create_db_engine(url, reader=True)  # as serve runs the web UI
        app = create_app(db.make_session_factory(engine), Settings())
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for run in range(args.runs):
            for kind, email in KINDS.items():
                client = app.test_client()
                client.environ_base["REMOTE_ADDR"] = (
                    f"10.{run // 250}.{run % 250}.{len(times[kind])}"
                )
                token = TOKEN.search(client.get("/login").get_data(as_text=True))
                assert token, "no login form"
                data = {"email": email, "password": "falsch-falsch-1", "csrf_token": token[1]}
                started = time.perf_counter()
                status = client.post("/login", data=data).status_code
                times[kind].append(time.perf_counter() - started)
                assert status == 401, (kind, status)
        engine.dispose()
    known = statistics.median(times["known"])
    print(f"wrong password, {args.runs} attempts per kind (ms):")
    for kind, values in times.items():
        p50 = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"  {kind:12} p50 {p50 * 1000:7.1f}  p95 {p95 * 1000:7.1f}  ratio {p50 / known:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
