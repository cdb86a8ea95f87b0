"""Intake of two mailgate SMTP listeners on one PostgreSQL database against one (issue 8).

Both runs take the same number of mails over the same client connections:
(1) one listener process; (2) two listener processes, the connections split between them
(as two hosts behind MX records of equal preference).  Each listener acknowledges a mail
only after PostgreSQL committed it, so the figure is acknowledged mails per second; the
ratio (2)/(1) is the scale-out (issue 8's target: >= 1.6).  A scratch database is created
for each run, its stored mails are counted (every 250 must be a row) and it is dropped.

Two hosts are emulated on one machine by a CPU quota per listener process
(``--cpu-per-instance``, a cgroup; see cpu_share.py): without it the second instance
takes its CPU from the first one, from PostgreSQL and from the client, and the ratio is
the machine's core count, not mailgate's.  ``--cpu-per-instance 0`` measures uncapped.
The client is Postfix's ``smtp-source`` (C, little CPU) when installed, else a Python
asyncio client.  The CPU each part used is printed, so the figure can be checked.

    python bench/multi_instance.py [--mails 2000] [--connections 20] [--repeat 3]
        [--cpu-per-instance 0.5] [--client smtp-source|python]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_share import (  # noqa: E402
    CpuQuota,
    machine_busy_seconds,
    make_quotas,
    named_cpu_seconds,
    process_cpu_seconds,
)
from ingest import DEALER, LEAD, _session, free_port, generate_mails, run_mailgate_server  # noqa: E402

SMTP_SOURCE_LENGTH = 11_000  # bytes, about the generated inquiries' mean size


@dataclass
class Run:
    mails_per_s: float
    listener_cpu_ms_per_mail: float
    postgres_cpu_ms_per_mail: float
    machine_busy_cores: float


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


def _stored(url: str) -> int:
    from sqlalchemy import func, select

    from mailgate import db
    from mailgate.models import InboundMail

    engine = db.create_db_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(InboundMail)) or 0)
    finally:
        engine.dispose()


def _drop(admin_url: str, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from mailgate import db

    name = make_url(url).database
    admin = db.create_db_engine(admin_url, pool_size=1)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def smtp_source_path() -> str | None:
    return shutil.which("smtp-source") or (
        "/usr/sbin/smtp-source" if os.access("/usr/sbin/smtp-source", os.X_OK) else None
    )


def _deliver_smtp_source(source: str, ports: list[int], mails: int, connections: int) -> None:
    """Two smtp-source processes in every run (same client cost), spread over the ports."""
    clients = []
    for i in range(2):
        port = ports[i % len(ports)]
        count = mails // 2 + (mails % 2 if i == 0 else 0)
        sessions = max(1, connections // 2)
        clients.append(
            subprocess.Popen(
                [
                    source,
                    *("-s", str(sessions), "-m", str(count), "-l", str(SMTP_SOURCE_LENGTH)),
                    *("-f", "noreply@web.example", "-t", LEAD, "-M", "bench.example"),
                    f"127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    for client in clients:
        _, err = client.communicate(timeout=900)
        if client.returncode != 0 or err.strip():
            raise RuntimeError(f"smtp-source failed: {err.decode(errors='replace')}")


def _deliver_python(ports: list[int], mails: list[bytes], connections: int) -> None:
    shares = [mails[i::connections] for i in range(connections)]
    latencies: list[float] = []

    async def main() -> None:
        await asyncio.gather(
            *(
                _session(ports[i % len(ports)], share, latencies)
                for i, share in enumerate(shares)
                if share
            )
        )

    asyncio.run(main())


def run(
    admin_url: str,
    mails: list[bytes],
    connections: int,
    instances: int,
    quotas: list[CpuQuota] | None,
    source: str | None,
) -> Run:
    """Acknowledged mails/s with ``instances`` listener processes on one fresh database."""
    url = _scratch_database(admin_url)
    ports = [free_port() for _ in range(instances)]
    procs = []
    try:
        for n, port in enumerate(ports):
            ready = multiprocessing.Event()
            proc = multiprocessing.Process(target=run_mailgate_server, args=(port, url, ready))
            proc.start()
            if quotas is not None:
                quotas[n].add(proc.pid)
            procs.append(proc)
            if not ready.wait(30):
                raise RuntimeError("listener did not start")
        listener_before = sum(process_cpu_seconds(p.pid) for p in procs)
        postgres_before = named_cpu_seconds("postgres")
        busy_before = machine_busy_seconds()
        started = time.perf_counter()
        if source is not None:
            _deliver_smtp_source(source, ports, len(mails), connections)
        else:
            _deliver_python(ports, mails, connections)
        elapsed = time.perf_counter() - started
        listener_cpu = sum(process_cpu_seconds(p.pid) for p in procs) - listener_before
        postgres_cpu = named_cpu_seconds("postgres") - postgres_before
        busy = machine_busy_seconds() - busy_before
        stored = _stored(url)
        if stored != len(mails):
            raise RuntimeError(f"{len(mails)} mails acknowledged but {stored} stored")
        return Run(
            mails_per_s=len(mails) / elapsed,
            listener_cpu_ms_per_mail=1000 * listener_cpu / len(mails),
            postgres_cpu_ms_per_mail=1000 * postgres_cpu / len(mails),
            machine_busy_cores=busy / elapsed,
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(10)
        _drop(admin_url, url)


def _summary(runs: list[Run]) -> dict[str, object]:
    return {
        "mails_per_s": [round(r.mails_per_s, 1) for r in runs],
        "listener_cpu_ms_per_mail": round(
            statistics.median(r.listener_cpu_ms_per_mail for r in runs), 2
        ),
        "postgres_cpu_ms_per_mail": round(
            statistics.median(r.postgres_cpu_ms_per_mail for r in runs), 2
        ),
        "machine_busy_cores": round(statistics.median(r.machine_busy_cores for r in runs), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cpu-per-instance",
        type=float,
        default=0.5,
        help="CPU cores each listener may use (a host of that size); 0 = uncapped",
    )
    parser.add_argument("--client", choices=("smtp-source", "python"), default=None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "MAILGATE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    source = smtp_source_path() if args.client in (None, "smtp-source") else None
    if args.client == "smtp-source" and source is None:
        parser.error("smtp-source is not installed (Debian package postfix)")
    quotas = make_quotas(args.cpu_per_instance, 2)
    if isinstance(quotas, str):
        print(f"note: listeners uncapped: {quotas}")
        quota_note, quotas = "uncapped", None
    else:
        quota_note = f"{args.cpu_per_instance} core per instance"
    mails = generate_mails(args.mails)
    one: list[Run] = []
    two: list[Run] = []
    try:
        for _ in range(args.repeat):  # alternating, so a slow moment hits both alike
            one.append(run(args.database_url, mails, args.connections, 1, quotas, source))
            two.append(run(args.database_url, mails, args.connections, 2, quotas, source))
    finally:
        for quota in quotas or []:
            quota.remove()
    ratio = statistics.median(r.mails_per_s for r in two) / statistics.median(
        r.mails_per_s for r in one
    )
    result = {
        "mails": args.mails,
        "connections": args.connections,
        "client": "smtp-source" if source else "python",
        "cpu_per_instance": quota_note,
        "one_instance": _summary(one),
        "two_instances": _summary(two),
        "ratio_median": round(ratio, 2),
        "cpu_count": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    for label, runs in (("one instance", one), ("two instances", two)):
        summary = _summary(runs)
        print(
            f"{label}: {statistics.median(r.mails_per_s for r in runs):.0f} mails/s "
            f"(runs {summary['mails_per_s']}); listener CPU "
            f"{summary['listener_cpu_ms_per_mail']} ms/mail, PostgreSQL CPU "
            f"{summary['postgres_cpu_ms_per_mail']} ms/mail, machine busy "
            f"{summary['machine_busy_cores']} of {os.cpu_count()} cores"
        )
    print(
        f"ratio {result['ratio_median']} (target 1.6; client {result['client']}, "
        f"{quota_note}, {args.connections} connections, load {result['load_average'][0]})"
    )
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
