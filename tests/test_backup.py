"""``mailgate backup``: consistent while intake writes; restored copies are whole and usable."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.backup import (
    BackupError,
    backup,
    default_name,
    libpq_url,
    restore_sqlite,
)
from mailgate.ingest.store import RawMail, store_raw_batch
from mailgate.models import InboundMail, InboundRaw

from .conftest import PG_URL, _truncate_all, require_service
from .mails import LEAD_ADDRESS, inquiry
from .procs import make_install

GROUP = 5  # mails per write transaction: a consistent copy holds a multiple of it


def write_until(factory: sessionmaker[Session], stop: threading.Event) -> None:
    """SMTP-like intake: groups of mails, each group one committed transaction."""
    n = 0
    while not stop.is_set():
        batch = [RawMail(inquiry(n + i), "smtp", envelope_to=(LEAD_ADDRESS,)) for i in range(GROUP)]
        store_raw_batch(factory, batch)
        n += GROUP


def counts(url: str) -> tuple[int, int]:
    engine = db.create_db_engine(url)
    try:
        with engine.connect() as conn:
            mails = conn.scalar(select(func.count()).select_from(InboundMail))
            raws = conn.scalar(select(func.count()).select_from(InboundRaw))
            return int(mails or 0), int(raws or 0)
    finally:
        engine.dispose()


def test_sqlite_backup_while_intake_writes_restores_whole(sqlite_url: str, tmp_path: Path) -> None:
    """Backed up during writes, restored into a new file: integrity ok, only whole transactions."""
    engine = db.create_db_engine(sqlite_url)
    factory = db.make_session_factory(engine)
    stop = threading.Event()
    writer = threading.Thread(target=write_until, args=(factory, stop))
    writer.start()
    try:
        time.sleep(0.5)  # some rows first
        before = counts(sqlite_url)[0]
        result = backup(sqlite_url, tmp_path / "copy.sqlite3")
        time.sleep(0.3)  # and some after
        after = counts(sqlite_url)[0]
    finally:
        stop.set()
        writer.join(30)
        engine.dispose()
    assert result.kind == "sqlite" and result.size > 0
    assert not list(tmp_path.glob("*.partial"))
    restored = tmp_path / "restored" / "mailgate.sqlite3"
    restored.parent.mkdir()
    restore_sqlite(result.path, restored)
    with sqlite3.connect(restored) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    mails, raws = counts(f"sqlite:///{restored}")
    print(f"FIGURE backup during writes: {mails} mails copied ({before} before, {after} after)")
    assert before <= mails <= after and after > before
    assert mails == raws and mails % GROUP == 0  # no half of a transaction
    with pytest.raises(BackupError, match="exists already"):
        backup(sqlite_url, result.path)
    with pytest.raises(BackupError, match="exists"):
        restore_sqlite(result.path, restored)


def test_backup_command_writes_a_named_file_and_reports_it(tmp_path: Path) -> None:
    install = make_install(tmp_path / "inst")
    done = install.run("backup")
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    path = install.root / report["backup"]
    assert path.is_file() and report["kind"] == "sqlite" and report["size"] == path.stat().st_size
    assert path.name.startswith("mailgate-") and path.suffix == ".sqlite3"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM dealer_setting").fetchone()[0] >= 1
    again = install.run("backup", "--output", str(path))
    assert again.returncode == 1 and b"exists already" in again.stderr
    assert default_name("postgresql://u@h/db").endswith(".pgdump")


@pytest.fixture
def pg_scratch() -> Iterator[str]:
    """An empty throw-away PostgreSQL database to restore into, dropped afterwards."""
    if not PG_URL:
        require_service("PostgreSQL", "MAILGATE_TEST_DATABASE_URL is not set")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        require_service("pg_dump", "the PostgreSQL client tools are not installed")
    admin = db.create_db_engine(PG_URL, pool_size=1)
    name = f"mailgate_restore_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_postgresql_pg_dump_during_writes_restores_into_a_scratch_database(
    pg_server_url: str, pg_scratch: str, tmp_path: Path
) -> None:
    """pg_dump wrapper while intake writes; pg_restore into a new database: whole transactions."""
    source, target = pg_server_url, pg_scratch
    engine = db.create_db_engine(source)
    db.upgrade(engine)
    _truncate_all(engine)
    factory = db.make_session_factory(engine)
    stop = threading.Event()
    writer = threading.Thread(target=write_until, args=(factory, stop))
    writer.start()
    try:
        time.sleep(0.5)
        result = backup(source, tmp_path / "mailgate.pgdump")
    finally:
        stop.set()
        writer.join(30)
        engine.dispose()
    assert result.kind == "pg_dump" and result.size > 0
    restored = subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq_url(target)}"]
        + [str(result.path)],
        capture_output=True,
        timeout=120,
    )
    assert restored.returncode == 0, restored.stderr.decode()
    mails, raws = counts(target)
    assert mails > 0 and mails == raws and mails % GROUP == 0
    check = db.create_db_engine(target)
    try:
        assert db.current_revision(check) is not None  # the restored schema is mailgate's
    finally:
        check.dispose()


def test_postgresql_backup_failure_leaves_nothing(tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None:
        require_service("pg_dump", "the PostgreSQL client tools are not installed")
    from .conftest import free_port

    target = tmp_path / "x.pgdump"
    with pytest.raises(BackupError, match="pg_dump failed"):
        backup(f"postgresql://nobody@127.0.0.1:{free_port()}/none", target)
    assert not target.exists() and not list(tmp_path.iterdir())
