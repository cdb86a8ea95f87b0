"""Start-up checks: mailgate refuses settings that would break its promises, and says why.

The promises (RELIABILITY.md, rule F1 and rows S5, O4):

* a 250 means the mail is on disk, so the database must commit durably:
  SQLite in WAL (or DELETE) journal mode with ``synchronous=FULL``, PostgreSQL
  with ``fsync`` and ``synchronous_commit`` on (:func:`check_database`);
* one escalation scheduler per SQLite file.  On PostgreSQL several schedulers
  share the work (``FOR UPDATE SKIP LOCKED``); SQLite has no such claims, and a
  second instance there is almost always a mistake (a second ``serve`` left
  running, a unit started twice).  :class:`SchedulerLock` is an OS file lock
  beside the database file: the kernel drops it when its process dies, even by
  SIGKILL, so a crash never leaves a stale lock behind.

Each refusal names the problem, the fix and the override: ``[database]
allow_unsafe = true`` (``MAILGATE_DATABASE__ALLOW_UNSAFE=1``).  With the
override, durability problems are logged as warnings, and a second
scheduler waits on the lock as a standby instead of running beside the first.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from mailgate import db
from mailgate.config import Settings

log = logging.getLogger("mailgate.startup")

OVERRIDE_HINT = (
    "set [database] allow_unsafe = true (or MAILGATE_DATABASE__ALLOW_UNSAFE=1) to start anyway"
)
LONG_LIVED = "scheduler"  # holder role of a running scheduler (serve, mailgate scheduler)
TICK = "tick"  # holder role of a single pass; others wait for it to end
TICK_WAIT_SECONDS = 600.0  # how long a pass waits for another pass to finish


class StartupRefused(RuntimeError):
    """mailgate will not start with settings that break its promises."""


def check_database(engine: Engine, settings: Settings) -> list[str]:
    """Refuse (raise) on durability problems, unless overridden; returns the overridden ones."""
    problems = db.check_durability(engine)
    if problems and not settings.database.unsafe_allowed:
        raise StartupRefused(
            "refusing to start, an acknowledged mail could be lost: "
            + "; ".join(problems)
            + f". Fix the database settings, or {OVERRIDE_HINT}"
        )
    for problem in problems:
        log.warning("durability override in effect: %s", problem)
    return problems


def scheduler_lock_path(database_url: str) -> Path | None:
    """The lock file beside a SQLite database; None where no lock is needed (PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database).expanduser().resolve()
    return database.with_name(database.name + ".scheduler.lock")


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as written in the lock file (pid may be None while being written)."""

    pid: int | None
    role: str

    def describe(self) -> str:
        who = f"process {self.pid}" if self.pid else "another process"
        what = "a scheduler pass, mailgate tick" if self.role == TICK else "scheduler"
        return f"{who} ({what})"


class SchedulerLock:
    """An exclusive ``flock`` on ``<database>.scheduler.lock``, holding pid and role.

    ``flock`` rather than a row with a heartbeat: the kernel releases it the
    moment the holder dies, so there is no timeout to tune and no window in
    which a crashed scheduler blocks the next one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, role: str) -> bool:
        """Take the lock without waiting; True if this process holds it now."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {role}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> Holder:
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").split()
        except OSError:
            text = []
        pid = int(text[0]) if text and text[0].isdigit() else None
        return Holder(pid, text[1] if len(text) > 1 else "")

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # Emptied first: a reader must not name a process that no longer holds it.
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def claim_scheduler(
    settings: Settings, role: str, *, wait: float = TICK_WAIT_SECONDS
) -> SchedulerLock | None:
    """The scheduler lock for this process, or a refusal saying who has it.

    Returns None on PostgreSQL (no lock needed), else a lock that is either
    held or to be waited on (:func:`wait_for`) by a scheduler thread: when a
    one-off pass (``tick``) has it, which ends by itself, or as a standby under
    the override.  A pass waits up to ``wait`` seconds for another pass (cron
    setups run them one after the other); with the override it runs anyway.
    """
    path = scheduler_lock_path(settings.database_url)
    if path is None:
        return None
    lock = SchedulerLock(path)
    started = time.monotonic()
    while not lock.try_acquire(role):
        holder = lock.holder()
        waited = time.monotonic() - started
        if not holder.role and waited < 2.0:
            time.sleep(0.05)  # the holder is writing its name
            continue
        if holder.role != LONG_LIVED:
            if role == LONG_LIVED:
                log.info("%s holds the scheduler lock; scheduling follows", holder.describe())
                return lock
            if waited < wait:
                time.sleep(0.1)
                continue
        if settings.database.unsafe_allowed:
            log.warning(
                "%s already runs the escalation scheduler on %s; override in effect: %s",
                holder.describe(),
                path.name.removesuffix(".scheduler.lock"),
                "this one waits as a standby" if role == LONG_LIVED else "running this pass anyway",
            )
            return lock
        raise StartupRefused(
            f"refusing to start a second scheduler: {holder.describe()} already runs it "
            f"on this SQLite database (lock {path}). On SQLite mailgate runs one scheduler "
            "(no row claims as on PostgreSQL); stop the other one, run this instance without "
            "the scheduler (mailgate smtpd / worker / sender), or use PostgreSQL for "
            f"several instances; or {OVERRIDE_HINT} (a second scheduler then waits as a standby)"
        )
    return lock


def wait_for(lock: SchedulerLock, stop: threading.Event, role: str, poll: float = 1.0) -> bool:
    """Block until ``lock`` is ours (True) or ``stop`` is set (False): the standby loop."""
    while not stop.is_set():
        if lock.try_acquire(role):
            log.info("scheduler lock %s acquired; this instance now runs the scheduler", lock.path)
            return True
        stop.wait(poll)
    return False
