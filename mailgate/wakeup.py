"""Wake-ups: a role waiting for work is woken when that work is committed (issue 18).

Why: the worker and the sender used to poll every 2 s, so half a poll interval
on average (and a whole one at worst) passed between an inquiry's 250 and the
salesperson's notification at the relay, twice.  Lead response is measured in
minutes; mailgate's own share should be invisible.

Two channels, :data:`INBOUND` (a mail was stored: the worker) and
:data:`OUTBOX` (an outbox row was inserted: the sender):

* within one process (``mailgate serve``) a :class:`Channel` is a generation
  counter under a condition variable.  Outbox inserts are seen by SQLAlchemy
  session events (:func:`install`), whoever makes them (worker, web UI,
  scheduler), and the channel is notified after the transaction commits, never
  before: a woken sender must find the row;
* across processes on PostgreSQL the committing transaction also sends
  ``NOTIFY`` (delivered at commit), and :class:`PgListener` turns it into a
  local notification in the waiting process;
* SQLite has no notifications: the waiting role runs one indexed read on a
  reader connection (no write lock) every :data:`SQLITE_POLL_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import ORMExecuteState, Session

log = logging.getLogger("mailgate.wakeup")

INBOUND = "mailgate_inbound"
OUTBOX = "mailgate_outbox"
SQLITE_POLL_SECONDS = 0.05  # a cheap indexed read; 50 ms is a fifth of the latency budget
_PENDING_KEY = "mailgate_wakeup"  # session.info: channels to notify after the commit


class Channel:
    """A wake-up signal with a generation count, so no notification is lost between waits.

    A waiter remembers the generation it has acted on and waits for a newer one;
    a notification that arrives while it works is seen at its next wait.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._condition = threading.Condition()
        self._generation = 0

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    @property
    def generation(self) -> int:
        return self._generation

    def wait(self, seen: int, timeout: float) -> int:
        """The current generation, once it differs from ``seen`` or after ``timeout`` s."""
        with self._condition:
            self._condition.wait_for(lambda: self._generation != seen, timeout)
            return self._generation


_CHANNELS = {name: Channel(name) for name in (INBOUND, OUTBOX)}


def channel(name: str) -> Channel:
    """This process's channel of that name."""
    return _CHANNELS[name]


# --- seeing commits -------------------------------------------------------------------


def _on_execute(state: ORMExecuteState) -> None:
    if not state.is_insert:
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) == "outbox_mail":
        state.session.info.setdefault(_PENDING_KEY, set()).add(OUTBOX)


def _before_commit(session: Session) -> None:
    pending = session.info.get(_PENDING_KEY)
    if not pending:
        return
    try:
        bind = session.get_bind()
    except Exception:  # noqa: BLE001 - no bind, nothing to notify through
        return
    if bind.dialect.name == "postgresql":
        for name in sorted(pending):
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": name})


def _after_commit(session: Session) -> None:
    for name in session.info.pop(_PENDING_KEY, ()):
        channel(name).notify()


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Listen to every session in this process (idempotent; called by ``db``)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        event.listen(Session, "do_orm_execute", _on_execute)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        _installed = True


def notify_stored(conn: Any) -> None:
    """After storing inbound mail on a Core connection: NOTIFY on PostgreSQL (same transaction)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": INBOUND})


# --- across processes -----------------------------------------------------------------


class PgListener:
    """A thread that LISTENs on PostgreSQL and notifies this process's channels.

    One connection of its own (autocommit, as LISTEN needs); reconnects after a
    failure, backing off, since the roles keep polling on their interval anyway.
    """

    def __init__(self, url: str, names: tuple[str, ...], stop: threading.Event) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self._names = names
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)

    def start(self) -> PgListener:
        self._thread.start()
        return self

    def _run(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    for name in self._names:
                        conn.execute(f"LISTEN {name}")  # names are our constants
                    backoff = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if note.channel in _CHANNELS:
                                channel(note.channel).notify()
            except Exception:  # noqa: BLE001 - the roles still poll; try again soon
                log.warning("LISTEN connection lost; reconnecting in %.1f s", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)


def waiter(
    url: str, name: str, stop: threading.Event, has_work: Callable[[], bool] | None
) -> Callable[[float], bool]:
    """A ``wait(timeout) -> woken`` for a role: local channel, plus the cross-process path.

    On PostgreSQL a :class:`PgListener` is started (it stops with ``stop``); on
    SQLite ``has_work`` (an indexed read on a reader connection) is asked every
    :data:`SQLITE_POLL_SECONDS` while waiting.
    """
    local = channel(name)
    seen = [local.generation]
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        PgListener(url, (name,), stop).start()
        has_work = None

    def wait(timeout: float) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            step = min(left, SQLITE_POLL_SECONDS) if has_work is not None else left
            current = local.wait(seen[0], step)
            if current != seen[0]:
                seen[0] = current
                return True
            if has_work is not None and not stop.is_set():
                try:
                    if has_work():
                        return True
                except Exception:  # noqa: BLE001 - a failed check just waits for the poll
                    log.debug("wake-up check failed", exc_info=True)
        return True

    return wait
