"""Database set-up: durability pragmas, migrations, readers that never block intake."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text

from mailgate import db
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail

from .mails import inquiry


def test_sqlite_runs_in_wal_with_full_sync(sqlite_url: str) -> None:
    engine = db.create_db_engine(sqlite_url)
    assert db.check_durability(engine) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    assert db.current_revision(engine) is not None
    db.upgrade(engine)  # idempotent
    engine.dispose()


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_a_web_reader_holding_a_transaction_does_not_block_intake(sqlite_url: str) -> None:
    writer = db.make_session_factory(db.create_db_engine(sqlite_url))
    reader = db.make_session_factory(db.create_db_engine(sqlite_url, reader=True))
    with reader() as page:
        page.execute(select(InboundMail.id)).all()  # a long page render, transaction open
        started = time.monotonic()
        store_raw(writer, inquiry(1), channel="smtp")
        assert time.monotonic() - started < 2  # not the 15 s busy timeout
        assert page.execute(text("SELECT 1")).scalar() == 1
    with reader() as session:
        assert len(session.scalars(select(InboundMail.id)).all()) == 1
