"""Shared fixtures: a migrated database per test, on SQLite and (if configured) PostgreSQL.

``MAILGATE_TEST_DATABASE_URL`` names a PostgreSQL server database; the suite
creates its own scratch database there, so the named one is never touched.
With ``MAILGATE_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing service is a
failure, not a skip.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings

from .run_alone import MARKER, RunAloneLock, xdist_run_id

REQUIRE_SERVICES = os.environ.get("MAILGATE_REQUIRE_SERVICES") == "1"
PG_URL = os.environ.get("MAILGATE_TEST_DATABASE_URL", "")

DEALER_TOML = """
[dealer]
name = "Autohaus Beispiel"
timezone = "Europe/Berlin"
language = "de"
from_name = "Autohaus Beispiel Verkauf"
addresses = ["leads@autohaus.example", "service@autohaus.example"]
admin_address = "admin@autohaus.example"
unassigned_notice_to = "zentrale@autohaus.example"

[distribution]
fallback_user = "anna@autohaus.example"

[[users]]
email = "anna@autohaus.example"
name = "Anna Schmidt"
role = "salesperson"
supervisor = "chef@autohaus.example"

[[users]]
email = "chef@autohaus.example"
name = "Carl Chef"
role = "supervisor"
receives_leads = false
"""


_FIGURES: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the ``FIGURE …`` lines tests print (RELIABILITY.md's target figures).

    Why: pytest hides a passing test's output, and the figures are the point of those
    tests; they are repeated together at the end of every run (CI's log included).
    """
    if report.when == "teardown":  # its captured output holds setup's and call's too
        _FIGURES.extend(
            line for line in report.capstdout.splitlines() if line.startswith("FIGURE ")
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section('figures (RELIABILITY.md G; README "Reliability")')
        for line in _FIGURES:
            terminalreporter.write_line(line)


_RUN_ALONE_LOCK: RunAloneLock | None = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Under xdist, a ``run_alone`` test runs with no other test beside it (tests/run_alone.py)."""
    global _RUN_ALONE_LOCK
    run_id = xdist_run_id()
    if run_id is None:
        return (yield)
    if _RUN_ALONE_LOCK is None:
        _RUN_ALONE_LOCK = RunAloneLock(run_id)
    alone = item.get_closest_marker(MARKER) is not None
    with _RUN_ALONE_LOCK.exclusive() if alone else _RUN_ALONE_LOCK.shared():
        return (yield)


def require_service(name: str, reason: str) -> None:
    """Skip when a service is missing on a user's machine; fail under CI's require flag."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{name} is required (MAILGATE_REQUIRE_SERVICES=1) but {reason}")
    pytest.skip(f"{name} not available: {reason}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test session, dropped afterwards."""
    if not PG_URL:
        require_service("PostgreSQL", "MAILGATE_TEST_DATABASE_URL is not set")
    admin = db.create_db_engine(PG_URL, pool_size=1)
    name = f"mailgate_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        require_service("PostgreSQL", f"cannot create a database: {exc}")
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mailgate.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with a fresh, migrated schema; runs each test on both backends."""
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path)
        engine = db.create_db_engine(url)
        db.upgrade(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("pg_server_url")
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    _truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLite only, for tests about SQLite itself or slow process-level tests."""
    url = _sqlite_url(tmp_path)
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return url


def _truncate_all(engine: Engine) -> None:
    from mailgate.models import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = db.create_db_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return db.make_session_factory(engine)


@pytest.fixture
def dealer(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """The factory, with the example dealership's settings imported."""
    with db.session_scope(factory) as session:
        import_settings(session, DEALER_TOML)
    return factory


@pytest.fixture
def sqlite_dealer(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    """The example dealership on SQLite, for rows about protocols and links, not the store."""
    engine = db.create_db_engine(sqlite_url)
    factory = db.make_session_factory(engine)
    with db.session_scope(factory) as session:
        import_settings(session, DEALER_TOML)
    yield factory
    engine.dispose()


def long_tier() -> bool:
    """True when the opt-in long tier runs (``MAILGATE_LONG=1``): tests scale counts up."""
    return os.environ.get("MAILGATE_LONG") == "1"
