"""Intake benchmark: mailgate's SMTP listener and worker against bare baselines.

One run, the same generated mails for every measurement:

(a) ceiling: a bare aiosmtpd handler that commits the raw bytes to SQLite
    (WAL, synchronous=FULL) and answers 250 — the least any durable listener does;
    with ``--database-url`` the serve part's ceiling commits to that PostgreSQL
    server instead (SQLite's is measured too and reported beside it);
(b) mailgate's SMTP listener (allowlist, 451-on-failure, store_raw via SQLAlchemy);
(c) mailgate's worker turning the stored mails into leads with notifications,
    against the standard library's parse rate (message_from_bytes + get_body);
(d) ``serve``: what users run.  The whole service (``mailgate serve``: listener,
    worker, sender, web UI in one process, as the README starts it) takes the
    same burst while its worker processes the backlog, against the ceiling (a),
    alternating, in the same run (issue 18: target >= 0.8x).  Then the time the
    worker needs for what was left at the last 250 gives its drain rate
    (target >= 200 mails/s).  ``--split`` adds the alternative of the issue:
    listener, worker and sender as separate processes (``smtpd``, ``worker``,
    ``sender``), the listener with a GIL of its own.

Servers run in a child process so client and server do not share one GIL.
Prints mails/s for 1, 10 and 50 connections, p99 DATA->250 latency, and ratios.

    python bench/ingest.py [--mails 2000] [--repeat 3] [--parts smtp,worker,serve] [--json]
        [--split] [--warm 31] [--database-url postgresql://…]

The worker's parser processes are started before its clock runs (a service
keeps them for its lifetime); their start time is printed apart.  The worker
runs ``--repeat`` times on fresh databases: the best run and all runs are shown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LEAD = "leads@autohaus.example"
DEALER = """
[dealer]
addresses = ["leads@autohaus.example"]
admin_address = "admin@autohaus.example"
send_mails = false
[distribution]
fallback_user = "anna@autohaus.example"
[[users]]
email = "anna@autohaus.example"
name = "Anna Schmidt"
"""
# the mails and the MTA-like client are the ones the intake test uses
from tests.intake_load import drive, free_port, generate_mails  # noqa: E402

# --- servers (child processes) ------------------------------------------------


def run_bare_server(port: int, db_path: str, ready: multiprocessing.Event) -> None:
    from aiosmtpd.smtp import SMTP

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, mail BLOB, rcpt TEXT)")

    class BareHandler:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO raw (mail, rcpt) VALUES (?, ?)",
                (envelope.original_content, ",".join(envelope.rcpt_tos)),
            )
            conn.execute("COMMIT")
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(BareHandler(), data_size_limit=None), "127.0.0.1", port
        )
        ready.set()
        await server.serve_forever()

    asyncio.run(main())


def run_mailgate_server(port: int, db_url: str, ready: multiprocessing.Event) -> None:
    from mailgate.config import SmtpSettings
    from mailgate.db import create_db_engine, make_session_factory
    from mailgate.ingest.smtp import IntakeHandler, start_smtp_server

    settings = SmtpSettings(port=port, max_connections=100)
    factory = make_session_factory(create_db_engine(db_url))

    async def main() -> None:
        handler = IntakeHandler(factory, settings)
        server = await start_smtp_server(handler, settings)
        ready.set()
        await server.serve_forever()

    asyncio.run(main())


# --- client --------------------------------------------------------------------


def measure_server(
    kind: str, mails: list[bytes], connections: int, workdir: Path
) -> tuple[float, float]:
    from mailgate import db
    from mailgate.dealer_settings import import_settings

    port = free_port()
    path = workdir / f"{kind}-{connections}-{os.urandom(4).hex()}.sqlite3"
    ready = multiprocessing.Event()
    if kind == "bare":
        proc = multiprocessing.Process(target=run_bare_server, args=(port, str(path), ready))
    else:
        url = f"sqlite:///{path}"
        engine = db.create_db_engine(url)
        db.upgrade(engine)
        with db.session_scope(db.make_session_factory(engine)) as session:
            import_settings(session, DEALER)
        engine.dispose()
        proc = multiprocessing.Process(target=run_mailgate_server, args=(port, url, ready))
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"{kind} server did not start")
        return drive(port, mails, connections)
    finally:
        proc.terminate()
        proc.join(10)


def start_parser_processes() -> float:
    """Start the worker's parser processes before the clock runs; returns the seconds taken.

    Why: a service starts them once (after its first 30 s) and keeps them; the
    bench measures that steady state, and prints the one-off start separately.
    """
    from mailgate import parse_pool
    from mailgate.worker import prepare_chunk

    started = time.perf_counter()
    pool = parse_pool.get_pool()
    if pool is not None:
        pool.submit(prepare_chunk, []).result()
    return time.perf_counter() - started


def measure_worker(mails: list[bytes], workdir: Path) -> float:
    from mailgate import db
    from mailgate.config import Settings
    from mailgate.dealer_settings import import_settings
    from mailgate.ingest.store import store_raw
    from mailgate.worker import process_pending

    url = f"sqlite:///{workdir / f'worker-{os.urandom(4).hex()}.sqlite3'}"
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    factory = db.make_session_factory(engine)
    with db.session_scope(factory) as session:
        import_settings(session, DEALER)
    for raw in mails:
        store_raw(factory, raw, channel="smtp", envelope_to=[LEAD])
    started = time.perf_counter()
    report = process_pending(factory, Settings())
    elapsed = time.perf_counter() - started
    assert report.statuses.get("processed") == len(mails), report.statuses
    engine.dispose()
    return len(mails) / elapsed


def measure_stdlib_parse(mails: list[bytes]) -> float:
    started = time.perf_counter()
    for raw in mails:
        msg = message_from_bytes(raw, policy=policy.default)
        body = msg.get_body(("plain", "html"))
        if body is not None:
            body.get_content()
    return len(mails) / (time.perf_counter() - started)


def measure_worker_part(
    mails: list[bytes], workdir: Path, repeat: int, results: dict[str, object]
) -> None:
    """(c): the worker, ``repeat`` runs (best and spread), and the stdlib parse rate."""
    pool_start = start_parser_processes()
    runs = [measure_worker(mails, workdir) for _ in range(repeat)]
    worker_rate = max(runs)
    stdlib_rate = max(measure_stdlib_parse(mails) for _ in range(repeat))
    results["worker_runs_mails_per_s"] = [round(rate, 1) for rate in runs]
    results["worker_mails_per_s"] = round(worker_rate, 1)
    results["parser_processes_start_s"] = round(pool_start, 2)
    results["stdlib_parse_mails_per_s"] = round(stdlib_rate, 1)
    results["ratio_c_over_stdlib_parse"] = round(worker_rate / stdlib_rate, 3)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"worker {worker_rate:.1f} mails/s (best of {', '.join(f'{r:.1f}' for r in runs)}; "
        f"parser processes started in {pool_start:.2f} s before); "
        f"stdlib parse {stdlib_rate:.1f} mails/s; c/parse {worker_rate / stdlib_rate:.3f}; "
        f"load average {os.getloadavg()[0]:.2f}",
        file=sys.stderr,
    )


def _scratch_database(server_url: str) -> str:
    """A fresh database on that PostgreSQL server for one service run (dropped by the caller)."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from mailgate import db

    name = f"mailgate_bench_{uuid.uuid4().hex[:8]}"
    admin = db.create_db_engine(server_url, pool_size=1)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return url


def _drop(server_url: str, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from mailgate import db

    admin = db.create_db_engine(server_url, pool_size=1)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def measure_service(
    roles: tuple[str, ...], mails: list[bytes], connections: int, workdir: Path, args: object
) -> object:
    """One burst against freshly started service processes; a ``ServeBurst``."""
    from tests.intake_load import burst_against, stop
    from tests.procs import make_install, wait_for_port

    server_url = getattr(args, "database_url", None)
    url = _scratch_database(server_url) if server_url else None
    install = make_install(workdir / f"{'+'.join(roles)}-{os.urandom(4).hex()}", url, web=True)
    install.at_default_log_level()  # INFO, as `mailgate serve` logs out of the box
    procs = [install.start(role, log_name=f"{role}.log") for role in roles]
    try:
        wait_for_port(install.smtp_port, 60)
        # The parser processes start 30 s after a service start (parse_pool.HOLD_OFF):
        # --warm 31 measures a service that has been running, the default a fresh one.
        time.sleep(getattr(args, "warm", 2.0))
        return burst_against(install.smtp_port, install.db_url, mails, connections)
    finally:
        for proc in procs:
            stop(proc)
        if server_url and url:
            _drop(server_url, url)


def measure_serve_part(
    mails: list[bytes], workdir: Path, args: argparse.Namespace, results: dict[str, object]
) -> None:
    """(d): the whole service against the ceiling, alternating, median of ``repeat`` each."""
    from tests.intake_load import measure_bare

    variants = [("serve",)] + ([("smtpd", "worker", "sender")] if args.split else [])
    connections = 10
    bare_runs: list[float] = []
    sqlite_runs: list[float] = []  # with --database-url: SQLite's ceiling too, for the record
    runs: dict[str, list[object]] = {"+".join(v): [] for v in variants}
    loads: list[float] = []
    for _ in range(args.repeat):
        if args.database_url:
            # The ceiling on the database the service uses: bare aiosmtpd committing
            # each mail to a scratch database on the same PostgreSQL server.
            scratch = _scratch_database(args.database_url)
            try:
                bare_runs.append(measure_bare(mails, connections, workdir, scratch)[0])
            finally:
                _drop(args.database_url, scratch)
            sqlite_runs.append(measure_bare(mails, connections, workdir)[0])
        else:
            bare_runs.append(measure_bare(mails, connections, workdir)[0])
        for roles in variants:
            runs["+".join(roles)].append(measure_service(roles, mails, connections, workdir, args))
        loads.append(os.getloadavg()[0])
    ceiling = statistics.median_high(bare_runs)
    backend = "postgresql" if args.database_url else "sqlite"
    for name, bursts in runs.items():
        rate = statistics.median_high([b.mails_per_s for b in bursts])  # type: ignore[attr-defined]
        drain = statistics.median_high([b.drain_rate for b in bursts])  # type: ignore[attr-defined]
        left = statistics.median_high([b.backlog_at_end for b in bursts])  # type: ignore[attr-defined]
        p99 = statistics.median_high([b.p99_s for b in bursts])  # type: ignore[attr-defined]
        results[f"{name}_{backend}_c{connections}"] = {
            "ceiling_mails_per_s": round(ceiling, 1),
            "ceiling_runs": [round(r, 1) for r in bare_runs],
            "ceiling_database": backend,
            "sqlite_ceiling_runs": [round(r, 1) for r in sqlite_runs],
            "mails_per_s": round(rate, 1),
            "runs": [round(b.mails_per_s, 1) for b in bursts],  # type: ignore[attr-defined]
            "ratio_over_ceiling": round(rate / ceiling, 3),
            "p99_ms": round(p99 * 1000, 1),
            "backlog_at_last_250": left,
            "drain_mails_per_s": round(drain, 1),
            "load_average": [round(x, 2) for x in loads],
        }
        print(
            f"{name} ({backend}, {connections} conn, worker running): {rate:8.1f}/s against "
            f"ceiling {ceiling:8.1f}/s = {rate / ceiling:5.2f}x (target 0.80x)  p99 DATA->250 "
            f"{p99 * 1000:6.1f} ms; {left} left at the last 250, drained at {drain:6.1f} mails/s "
            f"(target 200); load average {', '.join(f'{x:.1f}' for x in loads)}",
            file=sys.stderr,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", default="1,10,50")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per server (median kept) and of the worker (best kept)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--parts",
        default="smtp,worker",
        help="smtp (a and b), worker (c), serve (d, the whole service); default smtp,worker",
    )
    parser.add_argument(
        "--split", action="store_true", help="serve part: also smtpd + worker + sender processes"
    )
    parser.add_argument(
        "--warm",
        type=float,
        default=2.0,
        help="serve part: seconds between the service's start and the burst (31: parser pool on)",
    )
    parser.add_argument(
        "--database-url", help="serve part: a PostgreSQL server (a scratch database per run)"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    mails = generate_mails(args.mails)
    sizes = [len(m) for m in mails]
    results: dict[str, object] = {
        "mails": len(mails),
        "size_min": min(sizes),
        "size_max": max(sizes),
    }
    with tempfile.TemporaryDirectory(prefix="mailgate-bench-") as tmp:
        workdir = Path(tmp)
        for connections in (int(c) for c in args.connections.split(",") if "smtp" in parts):
            # Alternate the two servers and keep the median run of each: the
            # disk's fsync time drifts, and a pair measured side by side drifts together.
            bare_runs, mg_runs = [], []
            for _ in range(args.repeat):
                bare_runs.append(measure_server("bare", mails, connections, workdir))
                mg_runs.append(measure_server("mailgate", mails, connections, workdir))
            bare_rate, bare_p99 = statistics.median_high(bare_runs)
            mg_rate, mg_p99 = statistics.median_high(mg_runs)
            results[f"c{connections}"] = {
                "ceiling_mails_per_s": round(bare_rate, 1),
                "mailgate_mails_per_s": round(mg_rate, 1),
                "ratio_b_over_a": round(mg_rate / bare_rate, 3),
                "ceiling_p99_ms": round(bare_p99 * 1000, 2),
                "mailgate_p99_ms": round(mg_p99 * 1000, 2),
            }
            print(
                f"{connections:>3} conn: ceiling {bare_rate:8.1f}/s  mailgate {mg_rate:8.1f}/s  "
                f"b/a {mg_rate / bare_rate:5.2f}  p99 DATA->250 ceiling {bare_p99 * 1000:6.2f} ms  "
                f"mailgate {mg_p99 * 1000:6.2f} ms",
                file=sys.stderr,
            )
        if "worker" in parts:
            measure_worker_part(mails, workdir, args.repeat, results)
        if "serve" in parts:
            measure_serve_part(mails, workdir, args, results)
    print(json.dumps(results, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
