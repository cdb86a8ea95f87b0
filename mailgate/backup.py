"""``mailgate backup``: a consistent copy of the database while mailgate keeps running.

* SQLite: the ``sqlite3`` online backup API in one step.  In WAL mode the copy
  reads one snapshot while SMTP intake keeps committing (readers never block
  the writer), so the file holds exactly the transactions committed before the
  backup began, never half of one.  The copy is checked (``PRAGMA
  integrity_check``), fsynced and only then renamed to its final name: a
  backup file that exists is complete.
* PostgreSQL: ``pg_dump --format=custom`` (itself one snapshot), restored with
  ``pg_restore``; the dump goes to a temporary name and is renamed when
  ``pg_dump`` succeeded.

Restoring is documented in the README ("Operations"); :func:`restore_sqlite`
is the SQLite half, used by the tests and usable from a shell.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess  # nosec B404  # runs pg_dump/pg_restore, argv only
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

PG_DUMP_TIMEOUT = 6 * 3600  # seconds; a dump that hangs longer is a problem to report


class BackupError(RuntimeError):
    """The backup could not be made; the message says why (nothing half-written remains)."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    kind: str  # "sqlite" | "pg_dump"


def default_name(database_url: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    kind = make_url(database_url).get_backend_name()
    return f"mailgate-{stamp}.{'sqlite3' if kind == 'sqlite' else 'pgdump'}"


def backup(database_url: str, target: Path) -> BackupResult:
    """Back up the database at ``database_url`` to ``target`` (a file; never overwritten)."""
    if target.exists():
        raise BackupError(f"{target} exists already; choose another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise BackupError("an in-memory database cannot be backed up")
        return backup_sqlite(Path(url.database).expanduser(), target)
    if backend == "postgresql":
        return backup_postgresql(database_url, target)
    raise BackupError(f"cannot back up a {backend} database")


def backup_sqlite(source: Path, target: Path) -> BackupResult:
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # all pages in one step: one snapshot, no restart on writes
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"SQLite backup of {source} failed: {exc}") from exc
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy of {source} failed its integrity check: {verdict}")
    _fsync_and_rename(partial, target)
    return BackupResult(target, target.stat().st_size, "sqlite")


def backup_postgresql(database_url: str, target: Path) -> BackupResult:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump not found: install the PostgreSQL client (postgresql-client)")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    command = [pg_dump, "--format=custom", f"--file={partial}"]
    command.append(libpq_url(database_url))
    try:
        result = subprocess.run(  # nosec B603  # pg_dump with our own argv, no shell
            command, capture_output=True, timeout=PG_DUMP_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump did not finish within {PG_DUMP_TIMEOUT} s") from exc
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        message = result.stderr.decode("utf-8", "replace").strip()
        raise BackupError(f"pg_dump failed (exit {result.returncode}): {message}")
    _fsync_and_rename(partial, target)
    return BackupResult(target, target.stat().st_size, "pg_dump")


def libpq_url(database_url: str) -> str:
    """The URL as libpq tools take it: ``postgresql://`` without SQLAlchemy's driver part."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def restore_sqlite(backup_file: Path, database: Path) -> None:
    """Put a SQLite backup in place of ``database`` (mailgate must be stopped).

    The old file's ``-wal`` and ``-shm`` belong to the old database; left
    beside the restored file, SQLite would replay them into it.
    """
    if database.exists():
        raise BackupError(f"{database} exists: move it aside first (mailgate stopped)")
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    partial = database.with_name(database.name + ".partial")
    shutil.copyfile(backup_file, partial)
    _fsync_and_rename(partial, database)


def _fsync_and_rename(partial: Path, target: Path) -> None:
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
