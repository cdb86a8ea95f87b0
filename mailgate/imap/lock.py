"""One poller per IMAP mailbox across instances: a PostgreSQL advisory lock.

Two ``mailgate serve`` processes on one PostgreSQL database would otherwise
both poll every mailbox.  The import keys already make that safe (nothing is
stored twice), but it doubles the IMAP connections, races the after-import
actions and fills the status with noise.  So a poller first takes a
session-level ``pg_try_advisory_lock`` on a stable hash of the mailbox name,
on a connection of its own that it keeps while it polls.  The lock goes away
with that connection: a crashed or killed instance (SIGKILL, power loss) frees
the mailbox for the other one as soon as PostgreSQL notices the session is gone.

SQLite needs no lock here: one SQLite file serves one machine, where the
start-up checks already keep to one scheduler, and the behaviour there stays
as it was (the lock is always granted).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("mailgate.imap")


def lock_key(mailbox_name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` (same on every host).

    Python's ``hash()`` is salted per process, so two instances would disagree;
    the first 8 bytes of a SHA-256 do not.  The prefix keeps the keys apart from
    other advisory locks (the migration lock uses a small constant).
    """
    digest = hashlib.sha256(f"mailgate-imap-poller:{mailbox_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class MailboxLock:
    """The right to poll one mailbox, held on a dedicated database connection."""

    def __init__(self, engine: Engine, mailbox_name: str) -> None:
        self.engine, self.name = engine, mailbox_name
        self.key = lock_key(mailbox_name)
        self._conn: Connection | None = None
        self.held = False

    @property
    def needed(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        """Take the lock if free; True when this poller may poll (always on SQLite)."""
        if not self.needed:
            self.held = True
            return True
        if self.held and self.alive():
            return True
        self.release()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}))
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn, self.held = conn, True
        return True

    def alive(self) -> bool:
        """Whether the lock is still ours (its session alive); checked before every pass."""
        if not self.needed:
            return self.held
        if self._conn is None:
            return False
        try:
            self._conn.scalar(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - a dead session means the lock is gone
            log.warning("%s: lost the database session holding the poller lock", self.name)
            return False
        return True

    def release(self) -> None:
        """Give the mailbox back (unlock, then drop the dedicated connection)."""
        self.held = False
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        # Not back to the pool: a session lock would travel with the pooled session
        # if the unlock above failed; a closed session holds nothing.
        with contextlib.suppress(Exception):
            conn.invalidate()
        with contextlib.suppress(Exception):
            conn.close()
