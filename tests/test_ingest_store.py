"""store_raw_batch's SQLite fast path writes exactly what the SQLAlchemy path writes.

Why: on SQLite the group commit of SMTP intake bypasses SQLAlchemy's execution
layer (issue 18: CPU the listener's event loop shares in ``serve``).  Those rows
are read by the worker, the web UI and the IMAP de-duplication through the ORM,
so every column must read back as if SQLAlchemy had written it: UTC datetimes,
JSON lists, truncated envelope senders, hashes and Message-IDs.  Inputs come from
SMTP senders: odd bytes, endless headers, no headers at all.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.ingest.smtp import IntakeHandler
from mailgate.ingest.store import RawMail, insert_raw, store_raw_batch
from mailgate.models import InboundMail, InboundRaw

COLUMNS = [c.key for c in InboundMail.__table__.c if c.key != "id"]

MAILS = [
    RawMail(
        b"Message-ID: <a1@web.example>\r\nSubject: Anfrage\r\n\r\nHallo",
        "smtp",
        envelope_from="form@web.example",
        envelope_to=("leads@autohaus.example",),
        received_at=datetime(2026, 12, 7, 15, 0, 0, tzinfo=UTC),
    ),
    # no headers, no envelope, received "now"
    RawMail(b"", "smtp"),
    # a sender far over 998 characters, non-ASCII recipients, a time zone that is not UTC
    RawMail(
        b"Message-ID:\r\n <folded@web.example>\r\n\r\n\xff\xfe binary \x00 body",
        "smtp",
        envelope_from="x" * 2000 + "@web.example",
        envelope_to=("leads+mobile@autohaus.example", "vertrieb@autohäus.example"),
        received_at=datetime(2026, 3, 29, 3, 30, tzinfo=UTC) + timedelta(microseconds=1),
    ),
    RawMail(b"Subject: IMAP\r\n\r\n", "imap", mailbox="INBOX", envelope_to=()),
]


def _read(factory: sessionmaker[Session], ids: list[int]) -> list[tuple[dict, bytes]]:
    with factory() as session:
        out = []
        for new_id in ids:
            row = session.get(InboundMail, new_id)
            assert row is not None
            raw = session.scalar(select(InboundRaw.raw).where(InboundRaw.inbound_id == new_id))
            out.append(({key: getattr(row, key) for key in COLUMNS}, raw))
        return out


def _core(engine: Engine, mails: list[RawMail]) -> list[int]:
    with engine.begin() as conn:
        return [stored.id for stored in insert_raw(conn, mails)]


@pytest.fixture
def sqlite_factory(sqlite_url: str):
    engine = db.create_db_engine(sqlite_url)
    yield db.make_session_factory(engine)
    engine.dispose()


def _same_rows(fast: list[tuple[dict, bytes]], core: list[tuple[dict, bytes]]) -> None:
    for (fast_row, fast_raw), (core_row, core_raw) in zip(fast, core, strict=True):
        assert fast_raw == core_raw
        fast_at, core_at = fast_row.pop("received_at"), core_row.pop("received_at")
        assert fast_at.tzinfo is not None and core_at.tzinfo is not None
        assert fast_row == core_row


def test_the_fast_path_reads_back_like_sqlalchemys(sqlite_factory: sessionmaker[Session]) -> None:
    engine = sqlite_factory.kw["bind"]
    fast = store_raw_batch(sqlite_factory, MAILS)
    core_ids = _core(engine, MAILS)
    fast_rows, core_rows = (
        _read(sqlite_factory, [s.id for s in fast]),
        _read(sqlite_factory, core_ids),
    )
    # explicit times survive to the microsecond, as UTC
    assert fast_rows[0][0]["received_at"] == MAILS[0].received_at
    assert fast_rows[2][0]["received_at"] == MAILS[2].received_at
    assert abs(fast_rows[1][0]["received_at"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert fast_rows[0][0]["message_id"] == "<a1@web.example>" == fast[0].message_id
    assert fast_rows[2][0]["message_id"] == "<folded@web.example>"
    assert len(fast_rows[2][0]["envelope_from"]) == 998
    assert fast_rows[2][0]["envelope_to"] == list(MAILS[2].envelope_to)
    assert fast_rows[0][0]["status"] == "received" and fast_rows[0][0]["attempts"] == 0
    _same_rows(fast_rows, core_rows)
    # and the ORM query the worker uses finds them in order
    with sqlite_factory() as session:
        waiting = session.scalars(
            select(InboundMail.id).where(InboundMail.status == "received").order_by(InboundMail.id)
        ).all()
    assert waiting[: len(fast)] == [s.id for s in fast]


# one database for all examples: each reads back only its own rows
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=3000),
    sender=st.none() | st.text(max_size=1200),
    recipients=st.lists(st.text(max_size=80), max_size=5),
)
def test_any_input_reads_back_like_sqlalchemys(
    sqlite_url: str, raw: bytes, sender: str | None, recipients: list[str]
) -> None:
    engine = db.create_db_engine(sqlite_url)
    factory = db.make_session_factory(engine)
    try:
        mail = RawMail(raw, "smtp", envelope_from=sender, envelope_to=tuple(recipients))
        fast = store_raw_batch(factory, [mail])
        _same_rows(_read(factory, [fast[0].id]), _read(factory, _core(engine, [mail])))
    finally:
        engine.dispose()


def test_a_failing_batch_stores_nothing_and_frees_the_lock(
    sqlite_factory: sessionmaker[Session],
) -> None:
    """All or none: the second mail fails inside the transaction, after the first was written."""
    unwritable = RawMail(b"Subject: x\r\n\r\n", "smtp", envelope_to=(object(),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store_raw_batch(sqlite_factory, [MAILS[0], unwritable])
    with sqlite_factory() as session:
        assert session.scalar(select(InboundMail.id)) is None
        assert session.scalar(select(InboundRaw.inbound_id)) is None
    # the writer queue and SQLite's lock were given back: the next writer does not wait
    started = time.monotonic()
    done = threading.Event()

    def write() -> None:
        store_raw_batch(sqlite_factory, [MAILS[1]])
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    assert done.is_set() and time.monotonic() - started < 5
    with sqlite_factory() as session:
        assert len(session.scalars(select(InboundMail.id)).all()) == 1


def test_other_databases_keep_the_sqlalchemy_path(factory: sessionmaker[Session]) -> None:
    stored = store_raw_batch(factory, MAILS)
    rows = _read(factory, [s.id for s in stored])
    assert [raw for _, raw in rows] == [m.raw for m in MAILS]
    assert rows[0][0]["received_at"] == MAILS[0].received_at


def test_intake_leaves_checkpoints_to_the_other_writers(
    sqlite_factory: sessionmaker[Session],
) -> None:
    """The intake writer's commits do not copy a WAL of 1,000+ pages back (the worker's do).

    Why: SQLite's auto-checkpoint runs in the committing thread; in the intake
    writer every SMTP session of a burst waited for it (70 ms after a busy hour).
    """
    engine = sqlite_factory.kw["bind"]
    big = b"Subject: x\r\n\r\n" + b"A" * 20_000
    for _ in range(30):  # 300 mails of 20 KB: about 1,500 pages of WAL
        store_raw_batch(sqlite_factory, [RawMail(big, "smtp")] * 10)
    proxy = engine.raw_connection()
    try:
        cursor = proxy.dbapi_connection.cursor()
        # the pool's connections keep SQLite's default for everybody else
        assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        _, wal_pages, _ = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        proxy.close()
    assert wal_pages > 1000  # intake did not checkpoint at the default threshold


def test_the_listeners_address_lookup_reads_and_closes_its_connections(
    sqlite_factory: sessionmaker[Session],
) -> None:
    """The lookup runs on a reader engine of its own (no write lock); close() gives it back.

    Why: listeners are started and stopped many times (tests, ``smtpd`` restarts); an
    engine per listener left open kept its SQLite connection and file handle.
    """
    from mailgate.config import SmtpSettings
    from mailgate.dealer_settings import import_settings
    from tests.conftest import DEALER_TOML

    with db.session_scope(sqlite_factory) as session:
        import_settings(session, DEALER_TOML)
    handler = IntakeHandler(sqlite_factory, SmtpSettings())
    reader = handler.addresses._factory.kw["bind"]
    assert reader is not sqlite_factory.kw["bind"]
    holder = sqlite3.connect(sqlite_factory.kw["bind"].url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock is taken: a reader still answers
    try:
        assert "leads@autohaus.example" in handler.addresses.get()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert reader.pool.checkedin() == 1
    handler.close()
    assert reader.pool.checkedin() == 0
