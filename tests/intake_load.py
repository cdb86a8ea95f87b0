"""SMTP intake of the whole service against the durable ceiling, in one run (issue 18).

Shared by ``bench/ingest.py`` (its ``serve`` part) and ``tests/test_serve_intake.py``.

The ceiling is a bare aiosmtpd handler that commits the raw bytes to SQLite
(WAL, ``synchronous=FULL``) and answers 250: the least any durable listener
does.  The candidate is a real ``mailgate serve`` process (listener, worker,
sender, web UI), fed the same mails by the same client over the same number
of connections; after the burst, the time the worker needs for the rest of the
backlog gives its drain rate.  Both servers run in processes of their own, so
the client does not share a GIL with them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import quopri
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from mailgate import db
from mailgate.models import InboundMail, InboundStatus

ROOT = Path(__file__).resolve().parent.parent
LEAD = "leads@autohaus.example"
WORDS = (
    "Fahrzeug Probefahrt Angebot Finanzierung Inzahlungnahme Golf Passat Kombi "
    "Ausstattung Garantie Termin Rückruf Preis verfügbar schön grüße"
).split()


def generate_mails(count: int, seed: int = 7) -> list[bytes]:
    """Inquiries of 3-20 KB on the wire: plain 8bit, quoted-printable and base64 bodies."""
    rng = random.Random(seed)
    mails = []
    for n in range(count):
        size = rng.randint(3000, 20000)
        words = [rng.choice(WORDS) for _ in range(size // 8)]
        raw = _inquiry(n, seed, words)
        while len(raw) > size and len(words) > 10:  # trim to the drawn size on the wire
            words = words[: int(len(words) * size / len(raw))]
            raw = _inquiry(n, seed, words)
        mails.append(raw)
    return mails


def _inquiry(n: int, seed: int, words: list[str]) -> bytes:
    text = "\n".join(" ".join(words[i : i + 10]) for i in range(0, len(words), 10))
    body = (
        f"Name: Kunde Nummer{n}\nE-Mail: kunde{n}@kunden.example\n"
        f"Telefon: +49 170 {1000000 + n}\nModell: Golf\nPreis: 24.890 €\n"
        f"Nachricht: {text}\n"
    ).encode()
    style = n % 3
    if style == 0:
        part, cte = body, "8bit"
    elif style == 1:
        part, cte = quopri.encodestring(body), "quoted-printable"
    else:
        part, cte = base64.encodebytes(body), "base64"
    head = (
        f"From: Formular <noreply@web.example>\r\nTo: {LEAD}\r\n"
        f"Subject: Anfrage {n}\r\nMessage-ID: <bench-{n}-{seed}@web.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    ).encode()
    return head + part.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --- the ceiling: a bare durable listener in a child process ----------------------


def _bare_sqlite(db_path: str) -> Callable[[bytes, str], None]:
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, mail BLOB, rcpt TEXT)")

    def store(mail: bytes, rcpt: str) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO raw (mail, rcpt) VALUES (?, ?)", (mail, rcpt))
        conn.execute("COMMIT")

    return store


def _bare_postgresql(url: str) -> Callable[[bytes, str], None]:
    """The same on PostgreSQL (synchronous_commit as the server has it): one commit per mail."""
    import psycopg

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bare_raw (id BIGSERIAL PRIMARY KEY, mail BYTEA, rcpt TEXT)"
    )
    conn.commit()

    def store(mail: bytes, rcpt: str) -> None:
        conn.execute("INSERT INTO bare_raw (mail, rcpt) VALUES (%s, %s)", (mail, rcpt))
        conn.commit()

    return store


def run_bare_server(port: int, database: str) -> None:
    """Serve until killed; prints ``ready`` once it listens (``python -m tests.intake_load``).

    ``database``: an SQLite file, or a PostgreSQL URL (the ceiling on that database).
    """
    from aiosmtpd.smtp import SMTP

    pg = database.startswith("postgresql")
    store = _bare_postgresql(database) if pg else _bare_sqlite(database)

    class BareHandler:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            store(envelope.original_content, ",".join(envelope.rcpt_tos))
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(BareHandler(), data_size_limit=None), "127.0.0.1", port
        )
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure_bare(
    mails: list[bytes], connections: int, workdir: Path, database_url: str | None = None
) -> tuple[float, float]:
    """(mails/s, p99 DATA->250 seconds) of the bare durable listener on a fresh file.

    ``database_url``: a (scratch) PostgreSQL database to commit to instead.
    """
    port = free_port()
    path = database_url or str(workdir / f"bare-{connections}-{os.urandom(4).hex()}.sqlite3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.intake_load", str(port), path],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("bare server did not start")
        return drive(port, mails, connections)
    finally:
        proc.terminate()
        proc.wait(10)


# --- the client: like an MTA, on asyncio ------------------------------------------


async def _expect(reader: asyncio.StreamReader, prefix: bytes) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            if not line.startswith(prefix):
                raise RuntimeError(f"expected {prefix!r}, got {line!r}")
            return line


async def _session(port: int, mails: list[bytes], latencies: list[float]) -> None:
    """Like an MTA: reuse the connection, but open a new one every 500 mails."""
    for start in range(0, len(mails), 500):
        await _connection(port, mails[start : start + 500], latencies)


async def _connection(port: int, mails: list[bytes], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _expect(reader, b"220")
    writer.write(b"EHLO bench.example\r\n")
    await _expect(reader, b"250")
    for raw in mails:
        writer.write(b"MAIL FROM:<noreply@web.example>\r\n")
        await _expect(reader, b"250")
        writer.write(f"RCPT TO:<{LEAD}>\r\n".encode())
        await _expect(reader, b"250")
        writer.write(b"DATA\r\n")
        await _expect(reader, b"354")
        stuffed = raw.replace(b"\r\n.", b"\r\n..")
        writer.write(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n"))
        started = time.perf_counter()
        writer.write(b".\r\n")
        await _expect(reader, b"250")
        latencies.append(time.perf_counter() - started)
    writer.write(b"QUIT\r\n")
    await writer.drain()
    writer.close()


def drive(port: int, mails: list[bytes], connections: int) -> tuple[float, float]:
    """Deliver all mails over ``connections`` sessions; returns (mails/s, p99 seconds)."""
    latencies: list[float] = []
    shares = [mails[i::connections] for i in range(connections)]

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(_session(port, share, latencies) for share in shares if share))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
    return len(mails) / elapsed, p99


# --- the candidate: the whole service -----------------------------------------------


def open_backlog(url: str) -> int:
    """Stored mails the worker has not finished (received or processing)."""
    engine = db.create_db_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count(InboundMail.id)).where(
                        InboundMail.status.in_([InboundStatus.RECEIVED, InboundStatus.PROCESSING])
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


@dataclass
class ServeBurst:
    """One burst against a running ``mailgate serve``: intake, and the drain that follows."""

    mails_per_s: float
    p99_s: float
    backlog_at_end: int  # not yet processed when the last 250 came
    drain_s: float  # from the last 250 until the backlog was empty
    processed_during: int = field(default=0)

    @property
    def drain_rate(self) -> float:
        return self.backlog_at_end / self.drain_s if self.drain_s > 0 else float("inf")


def burst_against(
    port: int, url: str, mails: list[bytes], connections: int, drain_timeout: float = 300
) -> ServeBurst:
    """Deliver ``mails``, then wait until the worker has processed all of them."""
    before = open_backlog(url)
    rate, p99 = drive(port, mails, connections)
    ended = time.monotonic()
    left = open_backlog(url)
    while True:
        remaining = open_backlog(url)
        if remaining == 0:
            break
        if time.monotonic() - ended > drain_timeout:
            raise TimeoutError(f"{remaining} mails still unprocessed {drain_timeout}s after burst")
        time.sleep(0.05)
    drain = time.monotonic() - ended
    return ServeBurst(rate, p99, left, drain, len(mails) + before - left)


def worker_alone(mails: list[bytes], workdir: Path) -> float:
    """Mails/s of the worker alone (``process_pending`` in this process) on the same mails.

    Parsing in-process, as a service does for its first 30 s (``parse_pool.hold_off``):
    the baseline for the service's drain rate, measured in the same run.
    """
    from mailgate import parse_pool
    from mailgate.config import Settings
    from mailgate.dealer_settings import import_settings
    from mailgate.ingest.store import store_raw
    from mailgate.worker import process_pending

    from .conftest import DEALER_TOML

    parse_pool.hold_off()
    engine = db.create_db_engine(f"sqlite:///{workdir / f'worker-{os.urandom(4).hex()}.sqlite3'}")
    try:
        db.upgrade(engine)
        factory = db.make_session_factory(engine)
        with db.session_scope(factory) as session:
            import_settings(session, DEALER_TOML)
        for raw in mails:
            store_raw(factory, raw, channel="smtp", envelope_to=[LEAD])
        started = time.perf_counter()
        report = process_pending(factory, Settings())
        elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    assert report.claimed == len(mails), report
    return len(mails) / elapsed


def stop(proc: object, timeout: float = 60) -> int:
    """SIGTERM a service process and wait for it; its exit code."""
    proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    return int(proc.wait(timeout))  # type: ignore[attr-defined]


if __name__ == "__main__":
    run_bare_server(int(sys.argv[1]), sys.argv[2])
