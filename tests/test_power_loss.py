"""Power loss under the SQLite file (RELIABILITY.md G.1 row S6), long tier.

The S2 crash campaign kills the process, but the operating system survives it
and still writes out everything the process wrote. A power loss also takes the
page cache: only what was fsynced is on the disk. mailgate promises a 250 only
after a commit, and SQLite in WAL mode with ``synchronous=FULL`` fsyncs the WAL
at every commit, so an acknowledged mail must survive even that.

The database lives on ``tests/lazyfs.py``, a FUSE filesystem that keeps written
data in its own cache until fsync and drops it on command. Each round SIGKILLs
``mailgate serve`` at a random moment while clients deliver, drops every
unsynced write, unmounts, mounts again and restarts the service (which must
open the database: recovery). At the end the database is read from the backing
directory, i.e. exactly what "the disk" holds, and the invariants of section G
are checked (tests/smtp_campaign.py): I1 every 250 names a row that is stored,
I2 only re-sent mails stored twice, I3 byte-identical raw, I4 no 5xx.

The other tests show that the S6 test can fail: the filesystem loses unsynced
file data and SQLite commits made with ``synchronous=OFF``, and the same
campaign on a disk that ignores fsync ends with acknowledged mails missing.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db

from .conftest import long_tier, require_service
from .lazyfs import LazyMount, unavailable
from .procs import Install, make_install, wait_for_port
from .smtp_campaign import Campaign, check_invariants, stored_rows

pytestmark = pytest.mark.skipif(not long_tier(), reason="long tier only (MAILGATE_LONG=1)")

MAILS = 400
CLIENTS = 4
ROUNDS = 15  # power losses during the campaign, plus one at the end


@pytest.fixture
def lazy(tmp_path: Path) -> Iterator[LazyMount]:
    """A mounted lazy filesystem over ``tmp_path/backing``; unmounted afterwards."""
    reason = unavailable()
    if reason:
        require_service("FUSE (tests/lazyfs.py)", reason)
    mount = LazyMount(
        tmp_path / "backing", tmp_path / "mnt", tmp_path / "lazyfs.sock", tmp_path / "lazyfs.log"
    )
    mount.start()
    try:
        yield mount
    finally:
        mount.stop()


def _remount(lazy: LazyMount) -> dict[str, int]:
    """Power loss, then a fresh mount: the kernel's page cache of the old one is gone too."""
    dropped = lazy.power_loss()
    lazy.stop()
    lazy.start()
    return dropped


def test_lazyfs_drops_unsynced_data_and_keeps_synced(lazy: LazyMount) -> None:
    """The filesystem under test: only fsynced data and sizes survive a power loss."""
    path, backing = lazy.mount / "file", lazy.backing / "file"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"A" * 6000)
    os.fsync(fd)
    os.pwrite(fd, b"B" * 100, 5950)  # overwrites synced bytes across a page boundary
    os.close(fd)
    assert path.read_bytes() == b"A" * 5950 + b"B" * 100
    assert backing.read_bytes() == b"A" * 6000, "unsynced data reached the backing file"

    other = lazy.mount / "truncated"
    other.write_bytes(b"x" * 10_000)
    with open(other, "rb+") as f:
        os.fsync(f.fileno())
        f.truncate(100)
        f.seek(4999)
        f.write(b"y")
    assert other.read_bytes() == b"x" * 100 + bytes(4899) + b"y", "truncate then extend"
    assert os.path.getsize(other) == 5000

    never = lazy.mount / "never-synced"
    never.write_bytes(b"lost")

    dropped = _remount(lazy)
    assert dropped["files"] == 3 and dropped["bytes"] > 0, dropped
    assert path.read_bytes() == b"A" * 6000
    assert other.read_bytes() == b"x" * 10_000
    assert never.read_bytes() == b"", "a create is kept (metadata), its data is not"


# Commits 50 rows, then dies without closing the database (a close would checkpoint).
_SQLITE_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("CREATE TABLE t (x BLOB)")
conn.commit()
conn.execute(f"PRAGMA synchronous={sys.argv[2]}")
for _ in range(50):
    conn.execute("INSERT INTO t VALUES (?)", (os.urandom(300),))
    conn.commit()
print(conn.execute("SELECT count(*) FROM t").fetchone()[0], flush=True)
os._exit(0)
"""


@pytest.mark.parametrize(("synchronous", "survive"), [("FULL", True), ("OFF", False)])
def test_sqlite_commits_survive_power_loss_only_when_synced(
    lazy: LazyMount, synchronous: str, survive: bool
) -> None:
    """WAL commits survive with synchronous=FULL and are lost with OFF: S6 can fail."""
    path = lazy.mount / "t.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", _SQLITE_WRITER, str(path), synchronous],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "50", done.stderr
    _remount(lazy)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        conn.close()
    assert count == (50 if survive else 0), f"synchronous={synchronous}: {count} rows after loss"


@dataclass
class Outcome:
    """What a power-loss campaign did, and the database as the disk holds it afterwards."""

    campaign: Campaign
    factory: sessionmaker[Session]
    dropped: list[dict[str, int]]
    recovery: list[float]
    acked_at_loss: list[int]

    def lost(self) -> list[int]:
        """Mails acknowledged with 250 of which the disk holds no copy at all."""
        per_mail = Counter(row.mail for row in stored_rows(self.factory))
        return sorted(n for n in self.campaign.acked() if per_mail[n] == 0)

    def figure(self, mails: int) -> str:
        rows = stored_rows(self.factory)
        per_mail = Counter(row.mail for row in rows)
        acked = self.campaign.acked()
        return (
            f"power_losses={len(self.dropped)} mails={mails} acked={len(acked)} "
            f"stored_rows={len(rows)} stored_mails={len(per_mail)} lost={len(self.lost())} "
            f"duplicates={sum(c - 1 for c in per_mail.values())} "
            f"resent={len({a.mail for a in self.campaign.attempts if a.number > 1})} "
            f"dropped_unsynced_kib={sum(d['bytes'] for d in self.dropped) // 1024} "
            f"recovery_max_s={max(self.recovery, default=0):.2f}"
        )


@contextmanager
def power_loss_campaign(
    lazy: LazyMount, install: Install, mails: int, rounds: int, seed: int
) -> Iterator[Outcome]:
    """Deliver ``mails`` from 4 clients through ``rounds`` SIGKILL + power loss + remount.

    A last loss follows once the clients are done; then the filesystem is
    unmounted and the database opened from the backing directory.
    """
    rng = random.Random(seed)
    proc = install.start("serve")
    wait_for_port(install.smtp_port)
    campaign = Campaign(install.smtp_port, client_timeout=10, retry_pause=0.1)
    deadline = time.monotonic() + 240
    shares = [range(i, mails, CLIENTS) for i in range(CLIENTS)]
    clients = [threading.Thread(target=campaign.deliver, args=(s, deadline)) for s in shares]
    for thread in clients:
        thread.start()
    dropped: list[dict[str, int]] = []
    recovery: list[float] = []
    acked_at_loss: list[int] = []
    try:
        for _ in range(rounds):
            # Kill only once this instance has stored a few mails: it recovered,
            # and transactions are in flight at a random moment after that.
            campaign.wait_for_acks(min(mails, len(campaign.acked()) + 5), timeout=60)
            time.sleep(rng.uniform(0.0, 0.4))
            acked_at_loss.append(len(campaign.acked()))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            dropped.append(_remount(lazy))
            proc = install.start("serve")
            started = time.monotonic()
            wait_for_port(install.smtp_port)  # serve opens (recovers) the database first
            recovery.append(time.monotonic() - started)
    finally:
        for thread in clients:
            thread.join(timeout=300)
        os.kill(proc.pid, signal.SIGKILL)  # the last loss, after the clients are done
        proc.wait()
        dropped.append(lazy.power_loss())
        lazy.stop()
    # What the disk holds: the backing file, with the filesystem gone.
    engine = db.create_db_engine(f"sqlite:///{lazy.backing / 'mailgate.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        factory = db.make_session_factory(engine)
        yield Outcome(campaign, factory, dropped, recovery, acked_at_loss)
    finally:
        engine.dispose()


def _install_on(lazy: LazyMount, tmp_path: Path) -> Install:
    return make_install(tmp_path / "install", f"sqlite:///{lazy.mount / 'mailgate.sqlite3'}")


@pytest.mark.timeout(600)
def test_power_loss_campaign_loses_no_acknowledged_mail(lazy: LazyMount, tmp_path: Path) -> None:
    """S6: SIGKILL + power loss 15 times while 4 clients deliver 400 mails; I1-I4 hold."""
    install = _install_on(lazy, tmp_path)
    with power_loss_campaign(lazy, install, MAILS, ROUNDS, seed=2026) as outcome:
        print(f"FIGURE S6 {outcome.figure(MAILS)}")
        assert not outcome.lost(), f"acknowledged, then gone after a power loss: {outcome.lost()}"
        codes = check_invariants(outcome.campaign, outcome.factory, MAILS)
    print(f"FIGURE S6 reply codes {dict(codes)}")
    assert max(outcome.acked_at_loss) < MAILS, f"losses after the run: {outcome.acked_at_loss}"
    assert sum(d["bytes"] for d in outcome.dropped) > 0, "no unsynced write was ever dropped"


@pytest.mark.timeout(300)
def test_power_loss_campaign_catches_a_disk_that_ignores_fsync(
    lazy: LazyMount, tmp_path: Path
) -> None:
    """The same campaign on a disk whose fsync is a no-op loses acknowledged mail: S6 can fail.

    The settings are imported on an honest disk first (and closed, which
    checkpoints them into the database file), so the service still starts.
    """
    install = _install_on(lazy, tmp_path)
    lazy.stop()
    lazy.ignore_fsync = True
    lazy.start()
    mails = 40
    with power_loss_campaign(lazy, install, mails, rounds=2, seed=7) as outcome:
        print(f"FIGURE S6-lying-disk {outcome.figure(mails)}")
        assert outcome.lost(), "a disk that drops synced data lost no acknowledged mail"
        with pytest.raises(AssertionError):  # I1: a 250 names a row that is gone or reused
            check_invariants(outcome.campaign, outcome.factory, mails)
