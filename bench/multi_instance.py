"""Intake of two mailgate SMTP listeners on one PostgreSQL database against one (issue 8).

Both runs take the same generated mails over the same number of client connections:
(1) one listener process; (2) two listener processes, the connections split between them
(as two hosts behind MX records of equal preference).  Each listener acknowledges a mail
only after PostgreSQL committed it, so the figure is acknowledged mails per second; the
ratio (2)/(1) is the scale-out (issue 8's target: >= 1.6).  A scratch database is created
for each run and dropped afterwards.

    python bench/multi_instance.py [--mails 2000] [--connections 20] [--repeat 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import DEALER, _session, free_port, generate_mails, run_mailgate_server  # noqa: E402


def _scratch_database(admin_url: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from mailgate import db
    from mailgate.dealer_settings import import_settings

    name = f"mailgate_bench_{uuid.uuid4().hex[:8]}"
    admin = db.create_db_engine(admin_url, pool_size=1)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    with db.session_scope(db.make_session_factory(engine)) as session:
        import_settings(session, DEALER)
    engine.dispose()
    return url


def _drop(admin_url: str, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from mailgate import db

    name = make_url(url).database
    admin = db.create_db_engine(admin_url, pool_size=1)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(admin_url: str, mails: list[bytes], connections: int, instances: int) -> float:
    """Acknowledged mails/s with ``instances`` listener processes on one fresh database."""
    url = _scratch_database(admin_url)
    ports = [free_port() for _ in range(instances)]
    procs = []
    try:
        for port in ports:
            ready = multiprocessing.Event()
            proc = multiprocessing.Process(target=run_mailgate_server, args=(port, url, ready))
            proc.start()
            procs.append(proc)
            if not ready.wait(30):
                raise RuntimeError("listener did not start")
        shares = [mails[i::connections] for i in range(connections)]
        latencies: list[float] = []

        async def main() -> float:
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    _session(ports[i % instances], share, latencies)
                    for i, share in enumerate(shares)
                    if share
                )
            )
            return time.perf_counter() - started

        elapsed = asyncio.run(main())
        return len(mails) / elapsed
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(10)
        _drop(admin_url, url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "MAILGATE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    mails = generate_mails(args.mails)
    one, two = [], []
    for _ in range(args.repeat):  # alternating, so a slow moment hits both alike
        one.append(run(args.database_url, mails, args.connections, 1))
        two.append(run(args.database_url, mails, args.connections, 2))
    result = {
        "mails": args.mails,
        "connections": args.connections,
        "one_instance_mails_per_s": [round(v, 1) for v in one],
        "two_instances_mails_per_s": [round(v, 1) for v in two],
        "ratio_median": round(statistics.median(two) / statistics.median(one), 2),
        "cpu_count": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(
        f"one instance: {statistics.median(one):.0f} mails/s, two instances: "
        f"{statistics.median(two):.0f} mails/s, ratio {result['ratio_median']} "
        f"(target 1.6; {os.cpu_count()} cores, load {result['load_average'][0]})"
    )
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
