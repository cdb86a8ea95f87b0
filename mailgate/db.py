"""Engine, session factory and migrations: the one door to the database.

The SMTP listener, the worker, the sender and the web UI all get their sessions
from :func:`make_session_factory`, so durability settings are applied in one
place: SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk
before ``store_raw`` returns, which is what lets SMTP answer 250) and a busy
timeout so concurrent writers wait instead of failing.

Why writers must *start* with ``BEGIN IMMEDIATE`` on SQLite: a transaction that
began as a reader and then writes asks SQLite to upgrade its read snapshot to
the write lock, and in WAL mode that upgrade never waits.  If another
connection holds the write lock at that moment (``SQLITE_BUSY``) or committed
since the snapshot was taken (``SQLITE_BUSY_SNAPSHOT``), the statement fails
at once with "database is locked", whatever the busy timeout.  That is how 32
of 80 web requests failed during a mail burst (issue 18).  ``BEGIN IMMEDIATE``
takes the write lock up front and does wait (up to the busy timeout).

Within one process (``mailgate serve``: listener, worker, sender and web UI
are threads), writers of a database file queue for the lock in arrival order
(:class:`WriterQueue`) instead of each polling SQLite: its busy handler sleeps
up to 100 ms between tries and is not fair, so a click in the web UI could
wait for seconds behind a stream of short intake and worker transactions that
each held the lock for milliseconds.  Other processes still meet at the busy
timeout.

Every write-lock hold is timed (:data:`WRITE_LOCKS`; a DEBUG line per hold with
``write_lock_ms``, shown at any log level with ``MAILGATE_LOG_WRITE_LOCKS=1``; a
WARNING from :data:`SLOW_HOLD_MS` on): the longest hold is how long a click in
the web UI may have to wait.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("mailgate.db")
lock_log = logging.getLogger("mailgate.db.lock")
if os.environ.get("MAILGATE_LOG_WRITE_LOCKS"):  # every hold, whatever the log level (benches)
    lock_log.setLevel(logging.DEBUG)

SQLITE_BUSY_TIMEOUT_MS = 15_000
# The web UI's engine waits less: a person should see "try again" within
# seconds (and a web thread is not tied up for 15 s) if a write is ever stuck.
WEB_BUSY_TIMEOUT_MS = 5_000
SLOW_HOLD_MS = 1_000  # a hold this long makes a click wait visibly: logged as a warning
# A statement that cannot write: a SELECT, or a WITH that names no INSERT/UPDATE/DELETE.
_READ = re.compile(
    r"\s*(SELECT\b|WITH\b(?!.*\b(INSERT|UPDATE|DELETE|REPLACE)\b))", re.IGNORECASE | re.DOTALL
)


@dataclass
class WriteLockStats:
    """How long SQLite's write lock was held in this process (all threads).

    ``take()`` returns the figures since the last ``take()`` and starts a new
    window, so a caller can report "longest hold during the last pass".
    """

    count: int = 0
    total_ms: float = 0.0
    longest_ms: float = 0.0
    longest_by: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def record(self, held_ms: float, holder: str) -> None:
        with self._lock:
            self.count += 1
            self.total_ms += held_ms
            if held_ms > self.longest_ms:
                self.longest_ms, self.longest_by = held_ms, holder

    def take(self) -> WriteLockStats:
        with self._lock:
            window = WriteLockStats(self.count, self.total_ms, self.longest_ms, self.longest_by)
            self.count, self.total_ms, self.longest_ms, self.longest_by = 0, 0.0, 0.0, ""
        return window


WRITE_LOCKS = WriteLockStats()
_LONG_HOLD_EXPECTED = threading.local()  # migrations: a long hold is no news at start-up


@contextmanager
def long_hold_expected() -> Iterator[None]:
    """This thread's long holds are logged at DEBUG, not as a warning (migrations).

    Why: a migration holds the write lock while nothing else runs yet; on a
    loaded machine that passes a second, and a warning about waiting web writes
    would be false (and broke ``--log-format json`` output that expects INFO).
    """
    _LONG_HOLD_EXPECTED.on = True
    try:
        yield
    finally:
        _LONG_HOLD_EXPECTED.on = False


class WriterQueue:
    """This process's writers of one SQLite file, handed the write lock in arrival order.

    A writer takes its place before ``BEGIN IMMEDIATE`` and leaves it when its
    transaction ends; the next one is woken at once (no polling).  The queue
    only orders this process's writers: SQLite's lock stays the real one.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        """True once it is this writer's turn; False after ``timeout`` seconds."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ran out
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()  # stays held: handed to the next writer
            else:
                self._held = False


_QUEUES: dict[str, WriterQueue] = {}
_QUEUES_LOCK = threading.Lock()


def _queue_for(database: str) -> WriterQueue:
    key = str(Path(database).expanduser().resolve())
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(key, WriterQueue())


def _forget_queues_in_child() -> None:
    """A forked child starts with empty queues: the threads holding turns stayed behind."""
    global _QUEUES_LOCK
    _QUEUES_LOCK = threading.Lock()
    _QUEUES.clear()


os.register_at_fork(after_in_child=_forget_queues_in_child)


class _TimedConnection(sqlite3.Connection):
    """A pysqlite connection that takes its turn in the writer queue and times its holds.

    ``lock_since`` is set once the write lock is held (after ``BEGIN
    IMMEDIATE`` returned); commit, rollback and close end the hold (fsync
    included) and hand the turn to the next writer of this process.
    """

    lock_since: float | None = None
    queue: WriterQueue | None = None
    queued = False
    timeout_s = SQLITE_BUSY_TIMEOUT_MS / 1000

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._released()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._released()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._released()

    def _released(self) -> None:
        if self.queued and self.queue is not None:
            self.queued = False
            self.queue.release()
        since, self.lock_since = self.lock_since, None
        if since is None:
            return
        held_ms = (time.perf_counter() - since) * 1000
        holder = threading.current_thread().name
        WRITE_LOCKS.record(held_ms, holder)
        if held_ms >= SLOW_HOLD_MS and not getattr(_LONG_HOLD_EXPECTED, "on", False):
            lock_log.warning(
                "SQLite write lock held %.0f ms by %s: web writes waited that long",
                held_ms,
                holder,
                extra={"write_lock_ms": round(held_ms, 2), "holder": holder},
            )
        elif lock_log.isEnabledFor(logging.DEBUG):
            lock_log.debug(
                "write lock held %.1f ms by %s",
                held_ms,
                holder,
                extra={"write_lock_ms": round(held_ms, 2), "holder": holder},
            )


def create_db_engine(
    url: str, *, pool_size: int = 10, reader: bool = False, busy_timeout_ms: int | None = None
) -> Engine:
    """Create an engine with the durability pragmas mailgate relies on.

    ``reader=True`` (SQLite only; the web UI's engine) starts transactions
    DEFERRED, so a request that only reads never holds the single write lock
    that SMTP intake needs.  Its first statement that is not a SELECT turns the
    transaction into a writer first (:func:`_sqlite_upgrade_before_write`), so
    a request that writes waits for the lock instead of failing; its busy
    timeout is :data:`WEB_BUSY_TIMEOUT_MS`.  Other engines start every
    transaction IMMEDIATE, so they never need an upgrade either.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        timeout_ms = busy_timeout_ms or (WEB_BUSY_TIMEOUT_MS if reader else SQLITE_BUSY_TIMEOUT_MS)
        engine = create_engine(
            url,
            connect_args={
                "timeout": timeout_ms / 1000,
                "check_same_thread": False,
                "factory": _TimedConnection,
            },
            pool_size=pool_size,
            max_overflow=20,
        )
        queue = _queue_for(database) if database and database != ":memory:" else None
        event.listen(engine, "connect", _sqlite_on_connect_with(timeout_ms, queue))
        if reader:
            event.listen(engine, "begin", _sqlite_begin_deferred)
            event.listen(engine, "before_cursor_execute", _sqlite_upgrade_before_write)
        else:
            event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


def _sqlite_on_connect_with(timeout_ms: int, queue: WriterQueue | None) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        _sqlite_on_connect(dbapi_connection, _record, timeout_ms)
        if isinstance(dbapi_connection, _TimedConnection):
            dbapi_connection.queue, dbapi_connection.timeout_s = queue, timeout_ms / 1000

    return on_connect


def _sqlite_on_connect(
    dbapi_connection: Any, _record: Any, timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> None:
    # pysqlite's own transaction handling is disabled so that BEGIN IMMEDIATE
    # (below) takes the write lock up front; otherwise two writers that both
    # read first can deadlock into "database is locked" despite the timeout.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    _begin_immediate(connection.connection.dbapi_connection, connection.exec_driver_sql)


def _begin_immediate(dbapi: Any, execute: Callable[[str], object]) -> None:
    """``BEGIN IMMEDIATE`` after this process's earlier writers (:class:`WriterQueue`).

    If the turn does not come within the busy timeout, a writer of this process
    is stuck: one more try without waiting, so the caller fails now ("database
    is locked", shown as "try again" in the web UI) instead of after a second
    timeout.
    """
    timed = isinstance(dbapi, _TimedConnection)
    queue = dbapi.queue if timed else None
    queued = queue.acquire(dbapi.timeout_s) if queue is not None else False
    try:
        if queue is not None and not queued:
            execute("PRAGMA busy_timeout=0")
            try:
                execute("BEGIN IMMEDIATE")
            finally:
                execute(f"PRAGMA busy_timeout={int(dbapi.timeout_s * 1000)}")
        else:
            execute("BEGIN IMMEDIATE")
    except BaseException:
        if queued and queue is not None:
            queue.release()
        raise
    if timed:
        dbapi.queued, dbapi.lock_since = queued, time.perf_counter()


SQLITE_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
INTAKE_AUTOCHECKPOINT_PAGES = 16_000  # about 64 MB of WAL: see sqlite_write_cursor


@contextmanager
def sqlite_write_cursor(
    engine: Engine, *, checkpoint_after: int = SQLITE_AUTOCHECKPOINT_PAGES
) -> Iterator[sqlite3.Cursor]:
    """A DBAPI cursor in ``BEGIN IMMEDIATE`` on a pooled SQLite connection; commits on exit.

    Why: SMTP intake's group commit is the one hot path where SQLAlchemy's
    execution layer (events, compiled-statement lookup, result objects) cost
    more CPU than SQLite itself; in ``serve`` that CPU is taken from the
    listener's event loop on a small machine (issue 18).  The connection is
    the pool's, with the same pragmas, writer queue and lock timing as every
    other writer; only the statements bypass SQLAlchemy.

    ``checkpoint_after``: the WAL size in pages from which *this* commit copies
    the WAL back into the database (SQLite's auto-checkpoint, run by the
    committing thread).  Intake passes a large value: a checkpoint after a
    busy hour took 70 ms in the intake writer's thread, every SMTP session of
    the burst waiting for it, while the worker's and sender's commits (at the
    default) checkpoint a moment later anyway.  The limit keeps the WAL
    bounded when nothing else writes.
    """
    proxy = engine.raw_connection()
    try:
        dbapi = proxy.dbapi_connection
        cursor = dbapi.cursor()
        if checkpoint_after != SQLITE_AUTOCHECKPOINT_PAGES:
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_after)}")
        try:
            _begin_immediate(dbapi, cursor.execute)
            try:
                yield cursor
            except BaseException:
                dbapi.rollback()
                raise
            dbapi.commit()
        finally:
            if checkpoint_after != SQLITE_AUTOCHECKPOINT_PAGES:
                cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
    finally:
        proxy.close()


def _sqlite_begin_deferred(connection: Any) -> None:
    connection.info["mailgate_deferred"] = False  # BEGIN itself is no write to upgrade for
    connection.exec_driver_sql("BEGIN")
    connection.info["mailgate_deferred"] = True


def _sqlite_upgrade_before_write(
    connection: Any,
    _cursor: Any,
    statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    """Before a DEFERRED transaction's first write: restart it as ``BEGIN IMMEDIATE``.

    Only SELECTs ran so far, so ending the read transaction loses nothing; the
    new one waits for the write lock (busy timeout) where an upgrade would fail
    at once.  Rows read before are then as of the earlier snapshot, as in
    PostgreSQL's READ COMMITTED, which mailgate's code is written for anyway.
    Anything but a SELECT (or a WITH … SELECT) counts as a write, SAVEPOINT
    too, so a write can never slip in before the restart.
    """
    if not connection.info.get("mailgate_deferred") or _READ.match(statement):
        return
    connection.info["mailgate_deferred"] = False
    dbapi = connection.connection.dbapi_connection
    dbapi.execute("COMMIT")  # a read-only transaction: nothing to write
    asked = time.perf_counter()
    _begin_immediate(dbapi, dbapi.execute)
    if lock_log.isEnabledFor(logging.DEBUG):
        waited_ms = (time.perf_counter() - asked) * 1000
        lock_log.debug(
            "waited %.1f ms for the write lock",
            waited_ms,
            extra={"write_lock_wait_ms": round(waited_ms, 2)},
        )


@functools.lru_cache(maxsize=4)
def _reader_for(url: str) -> sessionmaker[Session]:
    engine = create_db_engine(url, pool_size=2, reader=True, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
    return make_session_factory(engine)


def reader_factory(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on the same database whose transactions start as readers (SQLite).

    For a background role that mostly reads and sometimes writes (the sender's
    pass: nothing due most of the time): its reads never hold SQLite's write
    lock, and a write restarts the transaction as ``BEGIN IMMEDIATE`` first
    (:func:`_sqlite_upgrade_before_write`), so code that writes must re-check
    what it read (compare-and-set), as on PostgreSQL.  Same busy timeout as the
    other background engines.  On PostgreSQL: ``factory`` itself.
    """
    engine = factory.kw["bind"]
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return factory
    return _reader_for(engine.url.render_as_string(hide_password=False))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    from mailgate import wakeup

    wakeup.install()  # an outbox row committed through any session wakes the sender
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

    with long_hold_expected(), engine.begin() as conn:
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
