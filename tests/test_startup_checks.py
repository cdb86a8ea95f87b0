"""Start-up checks (rows S5 and O4): durable database settings, one scheduler per SQLite file."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.engine import make_url

from mailgate import db
from mailgate.config import DatabaseSettings, Settings
from mailgate.models import Lead, OutboxMail, User, utcnow
from mailgate.startup_checks import (
    LONG_LIVED,
    TICK,
    SchedulerLock,
    StartupRefused,
    check_database,
    claim_scheduler,
    scheduler_lock_path,
)

from .procs import Install, make_install

UNSAFE_OK = Settings(database=DatabaseSettings(allow_unsafe=True))


def weakened_engine(url: str, *pragmas: str) -> Any:
    """mailgate's engine plus pragmas run after its own, as a 'tuning' would add them."""
    engine = db.create_db_engine(url)

    @event.listens_for(engine, "connect")
    def weaken(dbapi_connection: Any, _record: Any) -> None:
        for pragma in pragmas:
            dbapi_connection.execute(pragma)

    return engine


def test_s5_sqlite_in_wal_and_full_passes_the_start_up_check(sqlite_url: str) -> None:
    """S5: mailgate's own SQLite engine is WAL + synchronous=FULL and starts."""
    engine = db.create_db_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert check_database(engine, Settings()) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("pragma", "named"),
    [
        ("PRAGMA synchronous=NORMAL", "SQLite synchronous is 1, expected FULL (2)"),
        ("PRAGMA synchronous=OFF", "SQLite synchronous is 0, expected FULL (2)"),
        ("PRAGMA journal_mode=MEMORY", "SQLite journal_mode is memory, expected WAL"),
        ("PRAGMA journal_mode=OFF", "SQLite journal_mode is off, expected WAL"),
    ],
)
def test_s5_sqlite_weakened_durability_is_refused_unless_overridden(
    sqlite_url: str, pragma: str, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    """S5: SQLite not in WAL/DELETE + FULL refuses to start, saying why and how to override."""
    engine = weakened_engine(sqlite_url, pragma)
    try:
        with pytest.raises(StartupRefused) as refused:
            check_database(engine, Settings())
        message = str(refused.value)
        assert "an acknowledged mail could be lost" in message and named in message
        assert "allow_unsafe = true" in message and "MAILGATE_DATABASE__ALLOW_UNSAFE" in message
        with caplog.at_level(logging.WARNING, logger="mailgate.startup"):
            assert check_database(engine, UNSAFE_OK) == [named]
        assert f"durability override in effect: {named}" in caplog.text
        older_name = Settings(database=DatabaseSettings(allow_unsafe_durability=True))
        assert check_database(engine, older_name) == [named]
    finally:
        engine.dispose()


def test_s5_postgresql_durable_server_passes(pg_server_url: str) -> None:
    """S5: the test server runs with fsync and synchronous_commit on; the check agrees."""
    engine = db.create_db_engine(pg_server_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW fsync")).scalar() == "on"
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
        assert check_database(engine, Settings()) == []
    finally:
        engine.dispose()


def test_s5_postgresql_synchronous_commit_off_refuses_to_start(
    pg_server_url: str, tmp_path: Path
) -> None:
    """S5: a real mailgate process on PostgreSQL with synchronous_commit off (for its
    session, not the server) exits 1 and says why; with the override it runs and warns."""
    unsafe = make_url(pg_server_url).update_query_dict({"options": "-csynchronous_commit=off"})
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{unsafe.render_as_string(hide_password=False)}"\n'
        '[log]\nlevel = "WARNING"\n'
    )
    env = dict(os.environ, MAILGATE_CONFIG=str(config))
    env.pop("MAILGATE_DATABASE__URL", None)
    command = [sys.executable, "-m", "mailgate", "outbox", "--json"]
    refused = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert refused.returncode == 1
    stderr = refused.stderr.decode()
    assert "refusing to start" in stderr and "PostgreSQL synchronous_commit is off" in stderr
    assert "allow_unsafe" in stderr
    env["MAILGATE_DATABASE__ALLOW_UNSAFE"] = "1"
    allowed = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr.decode()
    assert "durability override in effect" in allowed.stderr.decode()


def test_o4_scheduler_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    """O4 (lock semantics): one holder at a time; the file names pid and role."""
    path = scheduler_lock_path(f"sqlite:///{tmp_path / 'mailgate.sqlite3'}")
    assert path == tmp_path / "mailgate.sqlite3.scheduler.lock"
    first, second = SchedulerLock(path), SchedulerLock(path)
    assert first.try_acquire(LONG_LIVED) and first.held
    assert not second.try_acquire(LONG_LIVED)
    assert second.holder().pid == os.getpid() and second.holder().role == LONG_LIVED
    first.release()
    assert second.try_acquire(TICK) and second.holder().role == TICK
    second.release()
    assert scheduler_lock_path("postgresql://u@h/db") is None


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_o4_a_tick_waits_for_a_running_tick_and_never_runs_beside_a_scheduler(
    tmp_path: Path,
) -> None:
    """O4: a pass waits for another pass; beside a long-lived scheduler it is refused."""
    settings = Settings().with_database_url(f"sqlite:///{tmp_path / 'mailgate.sqlite3'}")
    path = scheduler_lock_path(settings.database_url)
    assert path is not None
    other = SchedulerLock(path)
    assert other.try_acquire(TICK)
    started = time.monotonic()
    with pytest.raises(StartupRefused):
        claim_scheduler(settings, TICK, wait=0.5)  # the other pass does not end in time
    assert time.monotonic() - started >= 0.5
    other.release()
    mine = claim_scheduler(settings, TICK, wait=0.5)
    assert mine is not None and mine.held
    mine.release()
    assert other.try_acquire(LONG_LIVED)
    started = time.monotonic()
    with pytest.raises(StartupRefused, match="already runs it"):
        claim_scheduler(settings, TICK, wait=30)
    assert time.monotonic() - started < 5  # refused at once, not after the wait
    unsafe = replace(settings, database=replace(settings.database, allow_unsafe=True))
    standby = claim_scheduler(unsafe, LONG_LIVED)
    assert standby is not None and not standby.held  # the caller waits on it
    other.release()


def _due_leads(install: Install, first: int, count: int) -> None:
    """``count`` open leads of Anna's whose reminder is due now."""
    engine = db.create_db_engine(install.db_url)
    now = utcnow()
    try:
        with engine.begin() as conn:
            anna = conn.scalar(select(User.id).where(User.email == "anna@autohaus.example"))
            rows = [
                {
                    "dedupe_key": f"o4-{n}",
                    "assignee_id": anna,
                    "status": "assigned",
                    "vehicle": {},
                    "warnings": [],
                    "reply_token": f"o4-token-{n}",
                    "received_at": now - timedelta(days=3),
                    "created_at": now - timedelta(days=3),
                    "last_activity_at": now - timedelta(days=3),
                    "soon_at": now - timedelta(minutes=5),
                    "overdue_at": now + timedelta(days=1),
                    "stage2_at": now + timedelta(days=2),
                    "next_due_at": now - timedelta(minutes=5),
                    "escalation_stage": 0,
                }
                for n in range(first, first + count)
            ]
            conn.execute(insert(Lead.__table__), rows)
    finally:
        engine.dispose()


def _reminders(install: Install) -> list[tuple[int, int]]:
    engine = db.create_db_engine(install.db_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    select(OutboxMail.lead_id, func.count())
                    .where(OutboxMail.purpose == "reminder")
                    .group_by(OutboxMail.lead_id)
                ).all()
            )
    finally:
        engine.dispose()


def _wait(condition: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_o4_second_scheduler_on_one_sqlite_file_refuses_or_stands_by(tmp_path: Path) -> None:
    """O4: with a scheduler running on a SQLite file, a second real process refuses (exit 1,
    naming the holder); with the override it waits as a standby and takes over when the
    first is SIGKILLed.  0 duplicate reminders."""
    install = make_install(tmp_path / "o4")
    _due_leads(install, 0, 40)
    lock_file = Path(str(scheduler_lock_path(install.db_url)))
    first = install.start("scheduler", log_name="first.log")
    standby = None
    try:
        _wait(lambda: lock_file.exists() and lock_file.read_text().startswith(f"{first.pid} "))
        _wait(lambda: len(_reminders(install)) == 40, what="the first scheduler's pass")

        _due_leads(install, 40, 10)  # due while only a standby could act: it must not
        command = [sys.executable, "-m", "mailgate"]
        # Started together (they are independent): a second scheduler, a one-off pass,
        # and a second scheduler with the override.
        second, tick = (
            subprocess.Popen(command + [cmd], env=install.env(), cwd=install.root, stderr=-1)
            for cmd in ("scheduler", "tick")
        )
        standby_log = install.root / "standby.log"
        with open(standby_log, "ab") as log:
            standby = subprocess.Popen(
                command + ["scheduler"],
                stdout=log,
                stderr=log,
                env=install.env() | {"MAILGATE_DATABASE__ALLOW_UNSAFE": "1"},
                cwd=install.root,
            )
        stderr = second.communicate(timeout=60)[1].decode()
        assert second.returncode == 1
        assert "refusing to start a second scheduler" in stderr
        assert f"process {first.pid} (scheduler)" in stderr and "allow_unsafe" in stderr
        tick_err = tick.communicate(timeout=60)[1]
        assert tick.returncode == 1 and b"refusing to start a second scheduler" in tick_err
        _wait(lambda: b"waits as a standby" in standby_log.read_bytes(), what="the standby")
        time.sleep(0.5)
        assert standby.poll() is None and len(_reminders(install)) == 40
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        _wait(lambda: lock_file.read_text().startswith(f"{standby.pid} "), what="the takeover")
        _wait(lambda: len(_reminders(install)) == 50, what="the standby's first pass")
        per_lead = _reminders(install)
        duplicates = sum(n - 1 for _, n in per_lead)
        print(f"FIGURE O4 duplicate reminders with a second scheduler on SQLite: {duplicates}")
        assert duplicates == 0 and len(per_lead) == 50
    finally:
        for proc in (first, standby):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
