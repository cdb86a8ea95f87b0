"""Engine, session factory and migrations: the one door to the database.

The SMTP listener, the worker, the sender and the web UI all get their sessions
from :func:`make_session_factory`, so durability settings are applied in one
place: SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk
before ``store_raw`` returns, which is what lets SMTP answer 250) and a busy
timeout so concurrent writers wait instead of failing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("mailgate.db")

SQLITE_BUSY_TIMEOUT_MS = 15_000


def create_db_engine(url: str, *, pool_size: int = 10, reader: bool = False) -> Engine:
    """Create an engine with the durability pragmas mailgate relies on.

    ``reader=True`` (SQLite only) starts transactions DEFERRED, so a session
    that only reads (web pages) never holds the single write lock that SMTP
    intake needs; writers start IMMEDIATE so they never deadlock on upgrade.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin_deferred if reader else _sqlite_on_begin)
        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is disabled so that BEGIN IMMEDIATE
    # (below) takes the write lock up front; otherwise two writers that both
    # read first can deadlock into "database is locked" despite the timeout.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_begin_deferred(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def check_durability(engine: Engine) -> list[str]:
    """Return the reasons an acknowledged mail could be lost with this database."""
    problems: list[str] = []
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            if str(mode).lower() not in {"wal", "delete"}:
                problems.append(f"SQLite journal_mode is {mode}, expected WAL")
            if sync != 2:
                problems.append(f"SQLite synchronous is {sync}, expected FULL (2)")
        elif engine.dialect.name == "postgresql":
            for name in ("fsync", "synchronous_commit"):
                value = conn.execute(text(f"SHOW {name}")).scalar()
                if str(value).lower() == "off":
                    problems.append(f"PostgreSQL {name} is off")
    return problems


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "mailgate:migrations")
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply all migrations (idempotent; safe to call on every start)."""
    from alembic import command

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two instances starting at once must not both run the migration.
            conn.execute(text("SELECT pg_advisory_xact_lock(72817301)"))
        config = _alembic_config(engine)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
