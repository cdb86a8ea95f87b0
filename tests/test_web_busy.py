"""Web writes on a busy database: they wait, are retried once, or say "try again" (issue 18).

The cause of the 500s under load, reproduced in-process: a web request reads
first (the login checks the throttle and the password, the lead page checks who
may act) and writes afterwards.  On SQLite in WAL mode a read transaction that
wants to write is refused *at once* when another connection committed since its
read (SQLITE_BUSY_SNAPSHOT) or holds the write lock (SQLITE_BUSY); the busy
timeout does not apply.  The web engine now turns such a transaction into
``BEGIN IMMEDIATE`` before its first write, which waits.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg.errors
import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings
from mailgate.escalation import actions as escalation
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, ProtocolEntry
from mailgate.webui.accounts import views as account_views

from .conftest import DEALER_TOML
from .mails import inquiry
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ANNA,
    app_fixture,
    new_lead,
    team_fixture,
)
from .webui_helpers import PASSWORD, ensure_user, logged_in, post, web_app

WRITER_HOLDS = 0.3  # seconds another writer keeps the lock while the login wants it


@pytest.fixture
def sqlite_web(sqlite_url: str) -> Iterator[tuple[sessionmaker[Session], Flask]]:
    """As ``mailgate serve`` runs it: a writer engine for mail, the web UI's own engine."""
    writer_engine = db.create_db_engine(sqlite_url)
    web_engine = db.create_db_engine(sqlite_url, reader=True)
    writer = db.make_session_factory(writer_engine)
    with db.session_scope(writer) as session:
        import_settings(session, DEALER_TOML)
    ensure_user(writer, "ada@autohaus.example", "admin")
    ensure_user(writer, ANNA, "salesperson")
    yield writer, web_app(db.make_session_factory(web_engine))
    web_engine.dispose()
    writer_engine.dispose()


def _commit_a_mail(writer: sessionmaker[Session]) -> Callable[[], None]:
    """Mail arrives and is committed between the login's reads and its writes."""
    return lambda: store_raw(writer, inquiry(1), channel="smtp")


def _hold_the_write_lock(writer: sessionmaker[Session]) -> Callable[[], None]:
    """The worker holds the write lock right when the login wants to write."""

    def hold() -> None:
        holding = threading.Event()

        def worker() -> None:
            with db.session_scope(writer) as session:
                session.execute(text("UPDATE app_secret SET value = value WHERE 0"))
                holding.set()
                time.sleep(WRITER_HOLDS)

        threading.Thread(target=worker).start()
        assert holding.wait(10)

    return hold


@pytest.mark.parametrize("meanwhile", [_commit_a_mail, _hold_the_write_lock])
def test_a_login_that_read_first_waits_for_the_write_lock_instead_of_failing(
    sqlite_web: tuple[sessionmaker[Session], Flask],
    monkeypatch: pytest.MonkeyPatch,
    meanwhile: Callable[[sessionmaker[Session]], Callable[[], None]],
) -> None:
    writer, app = sqlite_web
    real = account_views.verify_password
    during_check = meanwhile(writer)

    def verify_while_mail_arrives(stored: str | None, password: str) -> bool:
        verified = real(stored, password)
        during_check()  # the Argon2 check takes long: the worker writes meanwhile
        return verified

    monkeypatch.setattr(account_views, "verify_password", verify_while_mail_arrives)
    client = app.test_client()
    response = post(client, "/login", {"email": ANNA, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert client.get("/leads").status_code == 200  # logged in


def test_a_web_transaction_that_reads_then_writes_sees_no_lock_error(sqlite_url: str) -> None:
    """The engine-level mechanism, for any request (a GET that writes too)."""
    writer = db.make_session_factory(db.create_db_engine(sqlite_url))
    web = db.make_session_factory(db.create_db_engine(sqlite_url, reader=True))
    with web() as page:
        before = page.scalar(select(func.count(InboundMail.id)))
        store_raw(writer, inquiry(1), channel="smtp")  # another writer commits meanwhile
        page.execute(text("UPDATE app_secret SET value = value WHERE 0"))  # would be refused
        page.commit()
    assert before == 0


def _locked() -> OperationalError:
    orig = sqlite3.OperationalError("database is locked")
    orig.sqlite_errorcode, orig.sqlite_errorname = 5, "SQLITE_BUSY"  # type: ignore[attr-defined]
    return OperationalError("INSERT INTO protocol_entry", {}, orig)


def _deadlock() -> OperationalError:
    return OperationalError("UPDATE lead", {}, psycopg.errors.DeadlockDetected("deadlock detected"))


def _serialization() -> OperationalError:
    orig = psycopg.errors.SerializationFailure("could not serialize access")
    return OperationalError("UPDATE lead", {}, orig)


def _contacts(factory: sessionmaker[Session], lead_id: int) -> int:
    with factory() as session:
        return (
            session.scalar(
                select(func.count(ProtocolEntry.id)).where(
                    ProtocolEntry.lead_id == lead_id, ProtocolEntry.action == "contact"
                )
            )
            or 0
        )


@pytest.mark.parametrize("error", [_locked, _deadlock, _serialization])
def test_a_lock_error_that_persists_is_a_friendly_503_not_a_500(
    team: sessionmaker[Session],
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Callable[[], OperationalError],
) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    calls = []

    def busy(*_args: object, **_kwargs: object) -> None:
        calls.append(1)
        raise error()

    monkeypatch.setattr(escalation, "log_contact", busy)
    with caplog.at_level(logging.INFO, logger="mailgate.webui"):
        response = post(
            anna, f"/leads/{lead_id}/contact", {"channel": "phone"}, page=f"/leads/{lead_id}"
        )
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Die Datenbank ist gerade beschäftigt – bitte in einem Moment erneut versuchen" in page
    assert "Es wurde nichts gespeichert" in page
    assert len(calls) == 2  # tried once more before giving up
    assert any("answered 503" in r.getMessage() for r in caplog.records)
    assert _contacts(team, lead_id) == 0
    assert anna.get(f"/leads/{lead_id}").status_code == 200  # the next click works


def test_a_busy_error_once_is_retried_and_the_action_done_once(
    team: sessionmaker[Session], app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    real, calls = escalation.log_contact, []

    def busy_the_first_time(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise _locked()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(escalation, "log_contact", busy_the_first_time)
    response = post(
        anna, f"/leads/{lead_id}/contact", {"channel": "phone"}, page=f"/leads/{lead_id}"
    )
    assert response.status_code == 302
    assert len(calls) == 2 and _contacts(team, lead_id) == 1


def test_other_database_errors_stay_500s(
    team: sessionmaker[Session], app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only lock and serialization errors are "try again"; a real fault is not hidden."""
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    calls = []

    def broken(*_args: object, **_kwargs: object) -> None:
        calls.append(1)
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: lead"))

    monkeypatch.setattr(escalation, "log_contact", broken)
    app.config["TESTING"], app.config["PROPAGATE_EXCEPTIONS"] = False, False
    response = post(
        anna, f"/leads/{lead_id}/contact", {"channel": "phone"}, page=f"/leads/{lead_id}"
    )
    assert response.status_code == 500 and len(calls) == 1


def test_the_api_answers_a_busy_database_with_a_problem_document(
    team: sessionmaker[Session], app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailgate.webui.api import views as api_views

    def busy(*_args: object, **_kwargs: object) -> None:
        raise _locked()

    monkeypatch.setattr(api_views, "authenticate", busy, raising=False)
    response = app.test_client().get("/api/v1/leads", headers={"Authorization": "Bearer x"})
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.headers["Retry-After"] == "5"
    assert response.json is not None and response.json["status"] == 503


def test_a_long_write_lock_hold_is_measured_and_logged(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(db, "SLOW_HOLD_MS", 100)
    writer = db.make_session_factory(db.create_db_engine(sqlite_url))
    db.WRITE_LOCKS.take()
    with caplog.at_level(logging.WARNING, logger="mailgate.db.lock"):
        with db.session_scope(writer) as session:
            session.execute(text("UPDATE app_secret SET value = value WHERE 0"))
            time.sleep(0.15)
    window = db.WRITE_LOCKS.take()
    assert window.count == 1 and window.longest_ms >= 150
    (record,) = [r for r in caplog.records if r.name == "mailgate.db.lock"]
    assert record.write_lock_ms >= 150  # type: ignore[attr-defined]


def test_bench_helpers_read_the_lock_holds_from_a_json_log(tmp_path: Path) -> None:
    from .web_load import lock_holds

    log = tmp_path / "serve.log"
    log.write_text(
        '{"time": "2026-12-07T06:00:00.000+00:00", "level": "DEBUG", "logger": '
        '"mailgate.db.lock", "message": "m", "write_lock_ms": 12.5, "holder": "worker"}\n'
        "not json\n"
    )
    assert lock_holds(log) == [(1796623200.0, 12.5, "worker")]


def test_writers_of_one_process_get_the_lock_in_arrival_order() -> None:
    queue = db.WriterQueue()
    assert queue.acquire(1)
    order: list[int] = []

    def writer(n: int) -> None:
        assert queue.acquire(10)
        order.append(n)
        queue.release()

    threads = []
    for n in range(5):
        threads.append(threading.Thread(target=writer, args=(n,)))
        threads[-1].start()
        time.sleep(0.05)  # queued one after the other
    queue.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]
    assert queue.acquire(0)  # free again
    blocked = db.WriterQueue()
    assert blocked.acquire(0) and not blocked.acquire(0.01)  # a timeout says so


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_a_web_write_gets_the_lock_between_back_to_back_writers(sqlite_url: str) -> None:
    """SQLite's own busy handler polls (sleeping up to 100 ms) and rarely hits the gap
    between two transactions of a busy writer; the queue hands the lock over at once."""
    writer = db.make_session_factory(db.create_db_engine(sqlite_url))
    web = db.make_session_factory(db.create_db_engine(sqlite_url, reader=True))
    done = threading.Event()

    def intake() -> None:  # transactions of 20 ms back to back, like a burst
        while not done.is_set():
            with db.session_scope(writer) as session:
                session.execute(text("UPDATE app_secret SET value = value WHERE 0"))
                time.sleep(0.02)

    stream = threading.Thread(target=intake)
    stream.start()
    try:
        time.sleep(0.2)
        with web() as page:
            page.scalar(select(func.count(InboundMail.id)))
            started = time.monotonic()
            page.execute(text("UPDATE app_secret SET value = value WHERE 0"))
            waited = time.monotonic() - started
            page.commit()
    finally:
        done.set()
        stream.join()
    assert waited < 1.0, f"the web write waited {waited:.2f} s"


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        ("SELECT count(*) FROM inbound_mail", False),
        ("WITH n AS (SELECT updated_at FROM distribution_state) SELECT count(*) FROM n", False),
        ("WITH n AS (SELECT 1 AS x) DELETE FROM app_secret WHERE 0 IN (SELECT x FROM n)", True),
        ("UPDATE app_secret SET value = value WHERE 0", True),
        ("SAVEPOINT sa_1", True),
    ],
)
def test_only_a_statement_that_may_write_takes_the_write_lock(
    sqlite_url: str, statement: str, writes: bool
) -> None:
    web = db.make_session_factory(db.create_db_engine(sqlite_url, reader=True))
    with web() as page:
        page.execute(text(statement))
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # free unless the web transaction holds it
            other.execute("ROLLBACK")
            held = False
        except sqlite3.OperationalError:
            held = True
        finally:
            other.close()
        page.rollback()
    assert held == writes


def test_a_forked_child_does_not_wait_for_turns_its_parent_holds(tmp_path: Path) -> None:
    held = db._queue_for(str(tmp_path / "mailgate.sqlite3"))
    assert held.acquire(1)  # a thread of the parent is mid-transaction
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports by exit code
            fresh = db._queue_for(str(tmp_path / "mailgate.sqlite3"))
            os._exit(0 if fresh is not held and fresh.acquire(0) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        held.release()
