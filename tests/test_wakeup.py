"""Wake-ups (issue 18, item 3): the sender hears of an outbox row when it is committed.

In one process through session events; from other processes through
PostgreSQL NOTIFY, or on SQLite through the waiter's short poll.
"""

from __future__ import annotations

import threading
import time

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailgate import wakeup
from mailgate.outbound.compose import new_message_id
from mailgate.outbound.outbox import enqueue
from mailgate.outbound.send import _due_check


def _add(session: Session, key: str) -> None:
    enqueue(
        session,
        key=key,
        purpose="test",
        mail_from="leads@autohaus.example",
        recipients=["anna@autohaus.example"],
        raw=b"Subject: x\r\n\r\nbody\r\n",
        subject="x",
        message_id=new_message_id("autohaus.example"),
    )


def test_an_outbox_insert_notifies_after_commit_and_not_after_rollback(
    factory: sessionmaker[Session],
) -> None:
    outbox = wakeup.channel(wakeup.OUTBOX)
    before = outbox.generation
    with factory() as session:
        _add(session, "rolled-back")
        session.rollback()
    assert outbox.generation == before, "a rolled-back insert woke the sender"
    with factory() as session:
        _add(session, "committed")
        assert outbox.generation == before, "woken before the row was committed"
        session.commit()
    assert outbox.generation == before + 1


def test_a_waiter_wakes_on_another_process_commit(
    db_url: str, factory: sessionmaker[Session]
) -> None:
    """Another process is simulated by a connection outside SQLAlchemy's session events."""
    stop = threading.Event()
    url = factory.kw["bind"].url.render_as_string(hide_password=False)
    wait = wakeup.waiter(url, wakeup.OUTBOX, stop, _due_check(url))
    try:
        time.sleep(0.5)  # the LISTEN connection is up (PostgreSQL)
        assert wait(0.2) is False, "woken with nothing committed"
        woken: list[float] = []

        def waiting() -> None:
            started = time.monotonic()
            if wait(10):
                woken.append(time.monotonic() - started)

        thread = threading.Thread(target=waiting)
        thread.start()
        time.sleep(0.2)
        if url.startswith("postgresql"):
            conninfo = make_url(url).set(drivername="postgresql")
            with psycopg.connect(conninfo.render_as_string(hide_password=False)) as conn:
                conn.execute("SELECT pg_notify('mailgate_outbox', '')")
                conn.commit()
        else:
            import sqlite3

            conn = sqlite3.connect(make_url(url).database)
            conn.execute(
                "INSERT INTO outbox_mail (idempotency_key, purpose, mail_from, recipients, "
                "subject, message_id, raw, status, attempts, created_at, send_after, "
                "next_attempt_at) VALUES ('other', 'test', 'a@b.example', '[]', 'x', '<x@y>', "
                "x'00', 'pending', 0, '2000-01-01 00:00:00', '2000-01-01 00:00:00', "
                "'2000-01-01 00:00:00')"
            )
            conn.commit()
            conn.close()
        thread.join(15)
        assert woken, "the waiter was not woken"
        assert woken[0] < 0.2 + 0.5, f"woken after {woken[0]:.2f} s"
    finally:
        stop.set()


def test_mail_stored_by_the_pipe_command_wakes_other_processes_on_postgresql(
    pg_server_url: str,
) -> None:
    """``mailgate pipe`` is always another process than the worker: its commit must NOTIFY.

    The NOTIFY is part of the store itself (store_raw_batch), not of one caller, so
    every intake path wakes workers elsewhere; a rolled-back store wakes nobody.
    """
    from mailgate import db
    from mailgate.ingest.store import store_raw

    engine = db.create_db_engine(pg_server_url)
    db.upgrade(engine)
    factory = db.make_session_factory(engine)
    conninfo = make_url(pg_server_url).set(drivername="postgresql")
    try:
        with psycopg.connect(
            conninfo.render_as_string(hide_password=False), autocommit=True
        ) as listener:
            listener.execute(f"LISTEN {wakeup.INBOUND}")
            store_raw(factory, b"Subject: per pipe\r\n\r\nHallo", channel="pipe")
            heard = [n.channel for n in listener.notifies(timeout=5, stop_after=1)]
        assert heard == [wakeup.INBOUND]
    finally:
        engine.dispose()
