"""IMAP faults against a real Dovecot (RELIABILITY.md G.4, rows I1-I6).

Link faults go through :mod:`tests.fault_proxy`; server faults are Dovecot's
own processes stopped or restarted.  Counts scale up with ``MAILGATE_LONG=1``.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.config import Settings
from mailgate.dealer_settings import import_settings
from mailgate.imap.fetch import fetch_mailbox
from mailgate.imap.lock import MailboxLock, lock_key
from mailgate.imap.poller import Poller
from mailgate.imap.tuning import Tuning
from mailgate.models import ImapState, InboundMail, Lead
from mailgate.worker import process_pending

from .conftest import DEALER_TOML, _truncate_all, long_tier
from .dovecot import Dovecot, _descendants
from .fault_proxy import FaultProxy
from .imap_helpers import (
    client_for,
    count_stored,
    distinct_stored,
    dovecot,  # noqa: F401 - fixture
    flags_in,
    logins,
    mailbox_for,
    wait_until,
)
from .mails import bounce, inquiry, no_contact

SEEN = b"\\Seen"


def _mail(n: int, padding: int = 0) -> bytes:
    return inquiry(n, padding=padding)


def _deliver(server: Dovecot, numbers: range, padding: int = 0) -> None:
    for n in numbers:
        server.deliver("anna", _mail(n, padding))


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[FaultProxy]:  # noqa: F811
    fault = FaultProxy(dovecot.port).start()
    yield fault
    fault.stop()


class Running:
    """A :class:`Poller` in a thread, stopped (and checked to end) by the test."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self.thread = threading.Thread(target=poller.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.poller.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the poller did not stop"


def _poll(
    factory: sessionmaker[Session], server: Dovecot, tuning: Tuning, port: int = 0
) -> Running:
    """A poller for anna's INBOX, through ``port`` (the proxy) or straight to the server."""
    mailbox = mailbox_for(server, port=port or server.port)
    return Running(Poller(factory, mailbox, tuning, threading.Event()))


def _last_error(factory: sessionmaker[Session]) -> str | None:
    with factory() as session:
        state = session.get(ImapState, ("postfach-anna", "INBOX"))
        return state.last_error if state else None


def _duplicates(factory: sessionmaker[Session]) -> int:
    return count_stored(factory) - distinct_stored(factory)


# -- I2 ---------------------------------------------------------------------------------------


def test_i2_uidvalidity_change_of_inbox_ingests_new_mail_on_reused_uids_and_no_old(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    """I2: INBOX deleted and recreated (new UIDVALIDITY), 100 new mails on UIDs 1..100.

    Target: 100 % of the new mails ingested, 0 old ones re-ingested, also when
    some old mails come back into the new INBOX (a provider migration does that).
    """
    mailbox = mailbox_for(dovecot)
    _deliver(dovecot, range(100))
    first = fetch_mailbox(dealer, mailbox, Tuning())
    assert (first.error, first.imported) == (None, 100)
    with dealer() as session:
        before = session.get(ImapState, (mailbox.name, "INBOX"))
        assert before is not None and before.last_uid == 100
        old_validity = before.uidvalidity

    # Dovecot will not DELETE INBOX over IMAP, so recreate it on disk, as a
    # provider migration or a restored backup does: new UIDVALIDITY, UIDs from 1.
    dovecot.stop()
    maildir = dovecot.root / "home" / "anna" / "Maildir"
    for entry in maildir.iterdir():
        if entry.is_dir() and entry.name in ("cur", "new", "tmp"):
            for path in entry.iterdir():
                path.unlink()
        elif entry.is_file():
            entry.unlink()
    time.sleep(1.1)  # UIDVALIDITY is a timestamp; make sure it cannot repeat
    dovecot.start()
    client = client_for(dovecot)
    for n in range(1000, 1100):
        client.append("INBOX", _mail(n))
    for n in range(0, 100, 5):  # 20 old mails come back after the new ones
        client.append("INBOX", _mail(n))
    info = client.select_folder("INBOX", readonly=True)
    assert int(info[b"UIDVALIDITY"]) != old_validity
    new_uids = sorted(client.search(["ALL"]))
    client.logout()
    assert new_uids[:100] == list(range(1, 101))  # the new mails sit on the old UIDs

    report = fetch_mailbox(dealer, mailbox, Tuning())
    assert (report.error, report.imported, report.duplicates) == (None, 100, 20)
    with dealer() as session:
        ids = set(session.scalars(select(InboundMail.message_id)))
    new_ingested = sum(f"<inquiry-{n}@autohaus-web.example>" in ids for n in range(1000, 1100))
    old_again = _duplicates(dealer)
    print(
        f"FIGURE I2 UIDVALIDITY change: new mails ingested {new_ingested}/100, "
        f"old mails re-ingested {old_again}"
    )
    assert new_ingested == 100 and old_again == 0 and count_stored(dealer) == 200
    assert flags_in(dovecot) == [{SEEN}] * 120


# -- I6 ---------------------------------------------------------------------------------------


def newsletter(n: int) -> bytes:
    return (
        "From: Autowelt Newsletter <news@autowelt.example>\r\n"
        "To: leads@autohaus.example\r\n"
        f"Subject: Die Neuheiten der Woche {n}\r\n"
        f"Message-ID: <news-{n}@autowelt.example>\r\n"
        "List-Id: Autowelt News <news.autowelt.example>\r\n"
        "List-Unsubscribe: <mailto:unsubscribe@autowelt.example>\r\n"
        "Precedence: bulk\r\n"
        "\r\nDie neuen Modelle sind da.\r\n"
    ).encode()


def test_i6_mail_without_lead_content_is_processed_once_and_never_fetched_again(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
    proxy: FaultProxy,
) -> None:
    """I6: newsletters, bounces and other non-leads are marked processed once.

    Target: no lead, flagged on the server, and not re-downloaded on the next
    5 cycles (the paperless-ngx #13173 lesson: a mail that yields nothing must
    not be fetched over and over).  The proxy counts the body FETCHes.
    """
    mailbox = mailbox_for(dovecot, port=proxy.port)
    for n in range(3):
        dovecot.deliver("anna", newsletter(n))
        dovecot.deliver("anna", bounce(n))
        dovecot.deliver("anna", no_contact(n))
    dovecot.deliver("anna", inquiry(1))
    report = fetch_mailbox(dealer, mailbox, Tuning())
    assert (report.error, report.imported) == (None, 10)
    process_pending(dealer, Settings())
    with dealer() as session:
        rows = session.scalars(select(InboundMail)).all()
        statuses = {r.message_id: r.status for r in rows}
        leads = session.scalar(select(func.count()).select_from(Lead))
    assert leads == 1  # only the inquiry
    assert all(s in ("processed", "discarded", "quarantined") for s in statuses.values())
    assert flags_in(dovecot) == [{SEEN}] * 10
    fetches = proxy.commands["FETCH"]
    for _ in range(5):
        again = fetch_mailbox(dealer, mailbox, Tuning())
        assert (again.error, again.imported, again.duplicates) == (None, 0, 0)
    refetched = proxy.commands["FETCH"] - fetches
    print(f"FIGURE I6 non-lead mails re-downloaded over 5 cycles: {refetched}")
    assert refetched == 0 and count_stored(dealer) == 10


# -- I3 ---------------------------------------------------------------------------------------

LINK = Tuning(
    batch_size=5,
    max_per_pass=50,
    socket_timeout=3.0,
    idle_slice=0.2,
    backoff_base=0.2,
    backoff_cap=1.0,
)


@pytest.mark.slow
@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_i3_blackhole_is_detected_within_the_socket_timeout_and_nothing_is_lost(
    dovecot: Dovecot,  # noqa: F811
    sqlite_dealer: sessionmaker[Session],
    proxy: FaultProxy,
) -> None:
    """I3: the link goes silent mid-backlog (no FIN, no RST) and comes back.

    Target: the poller notices within socket timeout + 5 s, keeps retrying with
    backoff (never hangs longer than socket timeout + 5 s), and once the link
    heals every mail is stored exactly once.  60 s hole in the long tier.
    """
    factory, hole = sqlite_dealer, (60.0 if long_tier() else 8.0)
    _deliver(dovecot, range(150), padding=1500)
    proxy.slow(40_000)  # ~2 KB mails at 40 KB/s: the backlog takes a few seconds
    running = _poll(factory, dovecot, port=proxy.port, tuning=LINK)
    try:
        assert wait_until(lambda: count_stored(factory) >= 10, 20)
        proxy.blackhole()
        started = time.monotonic()
        assert count_stored(factory) < 150, "the backlog drained first; test proves nothing"
        assert wait_until(lambda: _last_error(factory) is not None, LINK.socket_timeout + 5)
        detected = time.monotonic() - started
        _deliver(dovecot, range(150, 170))  # mail keeps arriving during the outage
        attempts: list[float] = []
        seen = proxy.connections
        while time.monotonic() - started < hole:
            if proxy.connections != seen:
                seen = proxy.connections
                attempts.append(time.monotonic())
            time.sleep(0.05)
        gaps = [b - a for a, b in zip([started + detected, *attempts], attempts, strict=False)]
        proxy.heal()
        healed = time.monotonic()
        assert wait_until(lambda: count_stored(factory) == 170, 30), count_stored(factory)
        recovered = time.monotonic() - healed
        assert wait_until(lambda: _last_error(factory) is None, 10)
    finally:
        running.stop()
    lost, dups = 170 - distinct_stored(factory), _duplicates(factory)
    longest = max(gaps, default=0.0)
    print(
        f"FIGURE I3 blackhole {hole:.0f}s: lost {lost}, duplicates {dups}, detected after "
        f"{detected:.1f}s, longest wait between reconnects {longest:.1f}s, "
        f"drained {recovered:.1f}s after healing (socket timeout {LINK.socket_timeout:.0f}s)"
    )
    assert (lost, dups) == (0, 0)
    assert detected <= LINK.socket_timeout + 5
    assert attempts, "no reconnect attempt during the outage"
    assert longest <= LINK.socket_timeout + 5
    assert all(flags == {SEEN} for flags in flags_in(dovecot))


@pytest.mark.slow
def test_i3_reset_mid_fetch_reconnects_and_stores_each_mail_once(
    dovecot: Dovecot,  # noqa: F811
    sqlite_dealer: sessionmaker[Session],
    proxy: FaultProxy,
) -> None:
    """I3: TCP RST in the middle of a ``FETCH BODY.PEEK[]`` answer, three connections in a row.

    Target: reconnect with backoff, 0 lost, 0 duplicates, every mail flagged once stored.
    """
    factory = sqlite_dealer
    _deliver(dovecot, range(60), padding=3000)
    proxy.reset_mid_fetch(3, after_bytes=6000)
    running = _poll(factory, dovecot, port=proxy.port, tuning=LINK)
    try:
        assert wait_until(lambda: count_stored(factory) == 60, 30), count_stored(factory)
        assert wait_until(lambda: _last_error(factory) is None, 10)
    finally:
        running.stop()
    lost, dups = 60 - distinct_stored(factory), _duplicates(factory)
    print(f"FIGURE I3 RST mid-FETCH x{proxy.resets_done}: lost {lost}, duplicates {dups}")
    assert proxy.resets_done == 3 and proxy.connections >= 4
    assert (lost, dups) == (0, 0)
    assert flags_in(dovecot) == [{SEEN}] * 60


@pytest.mark.slow
@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_i3_slow_link_of_1kb_per_second_is_not_mistaken_for_a_dead_one(
    dovecot: Dovecot,  # noqa: F811
    sqlite_dealer: sessionmaker[Session],
    proxy: FaultProxy,
) -> None:
    """I3: the server's answers trickle in at 1 KB/s.

    Target: every mail stored once, and no timeout fires while bytes still
    arrive (the socket timeout is per read, not per command).
    """
    factory, tuning = sqlite_dealer, replace(LINK, socket_timeout=2.0)
    _deliver(dovecot, range(4), padding=1000)
    proxy.slow(1024)
    started = time.monotonic()
    running = _poll(factory, dovecot, port=proxy.port, tuning=tuning)
    try:
        assert wait_until(lambda: count_stored(factory) == 4, 40), count_stored(factory)
        took = time.monotonic() - started
        failures = running.poller.failures
        error = _last_error(factory)
    finally:
        running.stop()
    print(
        f"FIGURE I3 slow link 1 KB/s: lost {4 - distinct_stored(factory)}, "
        f"duplicates {_duplicates(factory)}, failures {failures}, drained in {took:.1f}s"
    )
    assert (distinct_stored(factory), _duplicates(factory)) == (4, 0)
    assert failures == 0 and error is None
    assert took > 2 * tuning.socket_timeout  # the whole exchange took longer than a timeout


# -- I4 ---------------------------------------------------------------------------------------


def _imap_processes(server: Dovecot) -> list[int]:
    """Dovecot's ``imap`` processes (one per logged-in connection)."""
    pid = int(server.pid_file.read_text().split()[0])
    found = []
    for child in _descendants(pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "imap":
                found.append(child)
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.timeout(420)  # the long tier watches IDLE for 5 min
@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_i4_idle_is_renewed_each_interval_and_a_frozen_server_is_detected(
    dovecot: Dovecot,  # noqa: F811
    sqlite_dealer: sessionmaker[Session],
    proxy: FaultProxy,
) -> None:
    """I4: mailgate waits in IDLE; renewal shortened, then the server's imap process frozen.

    Target: IDLE re-issued each interval (counted at the proxy), and a
    ``kill -STOP`` of the server's imap process detected within
    renew interval + socket timeout, after which the poller reconnects and
    imports what arrived.  Long tier: 20 s interval over 5 min.
    """
    factory = sqlite_dealer
    renew, watch = (20.0, 300.0) if long_tier() else (2.0, 9.0)
    tuning = Tuning(
        idle_renew=renew, idle_slice=0.2, socket_timeout=3.0, backoff_base=0.2, backoff_cap=1.0
    )
    running = _poll(factory, dovecot, port=proxy.port, tuning=tuning)
    frozen: list[int] = []
    try:
        assert wait_until(lambda: proxy.commands["IDLE"] >= 1, 10)
        first = proxy.commands["IDLE"]
        time.sleep(watch)
        issued = proxy.commands["IDLE"] - first
        expected = watch / renew
        assert _last_error(factory) is None

        frozen = _imap_processes(dovecot)
        assert frozen, "no imap process to freeze"
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        assert wait_until(
            lambda: _last_error(factory) is not None, renew + tuning.socket_timeout + 5
        )
        detected = time.monotonic() - started
        dovecot.deliver("anna", inquiry(1))
        assert wait_until(lambda: count_stored(factory) == 1, 20)
        recovered = time.monotonic() - started
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        running.stop()
    print(
        f"FIGURE I4 IDLE renewed {issued}x in {watch:.0f}s (every {renew:.0f}s); frozen server "
        f"detected after {detected:.1f}s (bound {renew + tuning.socket_timeout:.0f}s), "
        f"mail imported {recovered:.1f}s after the freeze"
    )
    assert expected - 1 <= issued <= expected + 1
    assert proxy.commands["DONE"] >= issued
    assert detected <= renew + tuning.socket_timeout + 2.0  # + the test's own sampling


# -- I5 ---------------------------------------------------------------------------------------


def test_i5_mailbox_lock_is_exclusive_per_mailbox_on_postgresql_and_free_on_sqlite(
    engine: Engine,
) -> None:
    """I5: the advisory lock itself: one holder per mailbox name, freed on release.

    The key is the same in every process (not Python's salted ``hash``), so
    two hosts agree on it; on SQLite the lock is always granted (unchanged behaviour).
    """
    digest = hashlib.sha256(b"mailgate-imap-poller:verkauf").digest()
    assert lock_key("verkauf") == int.from_bytes(digest[:8], "big", signed=True)
    assert lock_key("verkauf") != lock_key("service")
    other = db.create_db_engine(engine.url.render_as_string(hide_password=False))
    first, second = MailboxLock(engine, "verkauf"), MailboxLock(other, "verkauf")
    neighbour = MailboxLock(other, "service")
    try:
        assert first.acquire() and first.alive()
        if engine.dialect.name == "sqlite":
            assert second.acquire()  # no lock on SQLite: as before
            return
        assert not second.acquire() and not second.held
        assert neighbour.acquire()  # another mailbox is not blocked
        assert first.acquire()  # asking again while holding it is fine
        first.release()
        assert not first.alive()
        assert second.acquire() and second.alive()
        assert not first.acquire()
    finally:
        for lock in (first, second, neighbour):
            lock.release()
        other.dispose()


@pytest.mark.slow
def test_i5_two_pollers_on_postgresql_take_turns_and_store_each_mail_once(
    dovecot: Dovecot,  # noqa: F811
    pg_server_url: str,
) -> None:
    """I5: two poller instances (own engines, own sessions) on one mailbox on PostgreSQL.

    Target: at most one polls at a time (the advisory lock: the standby never
    logs in to IMAP), the other takes over when the first stops or its lock
    session dies, and 0 duplicate leads over all messages (1,000 in the long tier).
    """
    total = 1000 if long_tier() else 300
    engine = db.create_db_engine(pg_server_url)
    db.upgrade(engine)
    _truncate_all(engine)
    factory = db.make_session_factory(engine)
    with db.session_scope(factory) as session:
        import_settings(session, DEALER_TOML)
    _deliver(dovecot, range(total))
    tuning = Tuning(batch_size=5, idle_slice=0.2, backoff_base=0.2, backoff_cap=1.0, lock_retry=0.3)
    engines = [db.create_db_engine(pg_server_url) for _ in range(3)]
    factories = [db.make_session_factory(e) for e in engines]
    pollers = [_poll(f, dovecot, tuning) for f in factories[:2]]
    overlaps = 0
    samples = 0
    try:

        def sample_until(done: object, timeout: float) -> bool:
            nonlocal overlaps, samples
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                holding = [p for p in pollers if p.thread.is_alive() and p.poller.lock.held]
                samples += 1
                overlaps += len(holding) > 1
                if done():  # type: ignore[operator]
                    return True
                time.sleep(0.02)
            return False

        assert sample_until(lambda: count_stored(factory) >= total // 3, 30)
        [active] = [p for p in pollers if p.poller.lock.held]
        assert len(logins(dovecot)) == 1  # the standby never connected
        # 1) the active instance shuts down: the standby takes over.
        active.stop()
        assert not active.poller.lock.held
        assert sample_until(lambda: count_stored(factory) >= 2 * total // 3, 30)
        pollers.remove(active)
        pollers.append(_poll(factories[2], dovecot, tuning))
        # 2) the active instance's lock session dies (a crash): the lock is gone
        # with it, the poller ends its pass within one batch, someone takes over.
        [active] = [p for p in pollers if p.poller.lock.held]
        unsigned = lock_key("postfach-anna") & 0xFFFFFFFFFFFFFFFF
        with engine.connect() as conn:
            killed = conn.scalar(
                text(
                    "SELECT bool_and(pg_terminate_backend(pid)) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                    " AND classid = :high AND objid = :low"
                ),
                {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF},
            )
        assert killed
        assert wait_until(lambda: count_stored(factory) == total, 60), count_stored(factory)
    finally:
        for p in pollers:
            p.stop()
        for e in engines:
            e.dispose()
    process_pending(factory, Settings())
    with factory() as session:
        leads = session.scalar(select(func.count()).select_from(Lead)) or 0
        lead_mails = session.scalar(
            select(func.count(func.distinct(InboundMail.message_id))).where(
                InboundMail.lead_id.is_not(None)
            )
        )
    engine.dispose()
    dups = _duplicates(factory) + (leads - (lead_mails or 0))
    print(
        f"FIGURE I5 two pollers on PostgreSQL: {total} mails, stored {distinct_stored(factory)}, "
        f"leads {leads}, duplicates {dups}, samples with two active pollers {overlaps}/{samples}"
    )
    assert (distinct_stored(factory), dups, leads) == (total, 0, total)
    assert overlaps == 0


# -- I1 ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_i1_sigkill_campaign_against_serve_loses_and_doubles_nothing(
    dovecot: Dovecot,  # noqa: F811
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    """I1: ``mailgate serve`` polls a growing inbox and is SIGKILLed at random instants.

    Target: 0 lost, 0 duplicate leads; after every kill, each mail flagged on
    the server is already stored (its raw row committed, from which its one
    lead is made).  300 mails / 10 kills; 1,000 / 30 in the long tier.
    """
    from .imap_helpers import imap_toml
    from .procs import make_install, wait_for_port

    total, kills = (1000, 30) if long_tier() else (300, 10)
    install = make_install(tmp_path / "inst", sqlite_url)
    (install.root / "dealer.toml").write_text(DEALER_TOML + imap_toml(dovecot, "anna", "verkauf"))
    assert install.run("settings", "import", str(install.root / "dealer.toml")).returncode == 0
    engine = db.create_db_engine(sqlite_url)
    factory = db.make_session_factory(engine)
    rng = random.Random(8)
    flagged_unstored = 0
    progress: list[tuple[int, int]] = []
    try:
        for round_ in range(kills):
            numbers = range(round_ * total // kills, (round_ + 1) * total // kills)
            process = install.start("serve")
            wait_for_port(install.smtp_port)
            # Mail trickles in (~1 s) while the poller imports it and the worker makes
            # leads; the kill lands somewhere in that, or just after.
            trickle = threading.Thread(target=_trickle, args=(dovecot, numbers, 1.0))
            trickle.start()
            time.sleep(rng.uniform(0.1, 1.6))
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            trickle.join()
            flagged_unstored += _flagged_but_not_stored(dovecot, factory)
            progress.append((count_stored(factory), _leads(factory)))
        process = install.start("serve")
        try:
            wait_for_port(install.smtp_port)  # SIGTERM is handled from here on
            assert wait_until(lambda: _leads(factory) >= total, 60, step=0.2), _leads(factory)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        with factory() as session:
            stored = session.scalar(select(func.count(func.distinct(InboundMail.message_id))))
            leads_per_mail = session.execute(
                select(InboundMail.message_id, func.count(Lead.id))
                .join(Lead, Lead.inbound_id == InboundMail.id)
                .group_by(InboundMail.message_id)
            ).all()
    finally:
        engine.dispose()
    lost = total - (stored or 0)
    dup_leads = sum(count - 1 for _, count in leads_per_mail) + _duplicates(factory)
    print(
        f"FIGURE I1 SIGKILL campaign: {total} mails, {kills} kills, lost {lost}, duplicate "
        f"leads {dup_leads}, flagged before stored {flagged_unstored}"
    )
    print(f"I1 (stored, leads) after each kill: {progress}")
    assert (lost, dup_leads, flagged_unstored) == (0, 0, 0)
    assert len(leads_per_mail) == total
    assert flags_in(dovecot) == [{SEEN}] * total


def _trickle(server: Dovecot, numbers: range, seconds: float) -> None:
    for n in numbers:
        server.deliver("anna", _mail(n, padding=800))
        time.sleep(seconds / len(numbers))


def _leads(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Lead)) or 0


def _flagged_but_not_stored(server: Dovecot, factory: sessionmaker[Session]) -> int:
    """Mails the server shows \\Seen whose raw copy is not committed (must be 0)."""
    client = client_for(server)
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["SEEN"])
        data = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
    finally:
        client.logout()
    seen_ids = set()
    for item in data.values():
        header = next(v for k, v in item.items() if k.startswith(b"BODY[HEADER"))
        seen_ids.add(header.decode().split(":", 1)[1].strip())
    with factory() as session:
        stored = set(session.scalars(select(InboundMail.message_id)))
    return len(seen_ids - stored)


def _talks_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` has an established TCP connection to 127.0.0.1:``port``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
            return True
    return False


@pytest.mark.slow
@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_i5_two_serve_processes_on_postgresql_one_polls_and_the_other_takes_over_a_kill(
    dovecot: Dovecot,  # noqa: F811
    pg_server_url: str,
    tmp_path: Path,
) -> None:
    """I5 as deployed: two ``mailgate serve`` processes on one PostgreSQL, one mailbox.

    Target: at any instant at most one IMAP session on the mailbox (Dovecot's
    imap processes counted every 50 ms), the standby takes over within its
    lock retry after the active one is SIGKILLed, 0 duplicate leads.
    """
    from .imap_helpers import imap_toml
    from .procs import make_install, wait_for_port

    total = 1000 if long_tier() else 200
    engine = db.create_db_engine(pg_server_url)
    db.upgrade(engine)
    _truncate_all(engine)
    engine.dispose()
    installs = [make_install(tmp_path / f"inst{n}", pg_server_url) for n in range(2)]
    dealer_toml = installs[0].root / "dealer.toml"
    dealer_toml.write_text(DEALER_TOML + imap_toml(dovecot, "anna", "verkauf"))
    assert installs[0].run("settings", "import", str(dealer_toml)).returncode == 0
    engine = db.create_db_engine(pg_server_url)
    factory = db.make_session_factory(engine)
    processes = [install.start("serve") for install in installs]
    most_sessions, samples = 0, 0
    try:
        for install in installs:
            wait_for_port(install.smtp_port)

        def sample_until(done: object, timeout: float) -> bool:
            nonlocal most_sessions, samples
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                most_sessions = max(most_sessions, len(_imap_processes(dovecot)))
                samples += 1
                if done():  # type: ignore[operator]
                    return True
                time.sleep(0.05)
            return False

        assert sample_until(lambda: _imap_processes(dovecot), 30)
        _trickle(dovecot, range(total // 2), 2.0)
        assert sample_until(lambda: count_stored(factory) >= total // 4, 30)
        [active] = [p for p in processes if _talks_to(p.pid, dovecot.port)]
        active.send_signal(signal.SIGKILL)
        active.wait(10)
        killed_at = time.monotonic()
        _deliver(dovecot, range(total // 2, total), padding=800)
        [standby] = [p for p in processes if p is not active]
        assert sample_until(lambda: _talks_to(standby.pid, dovecot.port), 30)
        takeover = time.monotonic() - killed_at
        assert sample_until(lambda: _leads(factory) >= total, 60), _leads(factory)
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(60) == 0
        with factory() as session:
            per_mail = session.execute(
                select(InboundMail.message_id, func.count(Lead.id))
                .join(Lead, Lead.inbound_id == InboundMail.id)
                .group_by(InboundMail.message_id)
            ).all()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        engine.dispose()
    dup_leads = sum(count - 1 for _, count in per_mail) + _duplicates(factory)
    print(
        f"FIGURE I5 two serve processes on PostgreSQL: {total} mails, leads {len(per_mail)}, "
        f"duplicate leads {dup_leads}, most concurrent IMAP sessions {most_sessions} "
        f"({samples} samples), takeover {takeover:.1f}s after SIGKILL "
        f"(lock retry {Tuning().lock_retry:.0f}s)"
    )
    assert (len(per_mail), dup_leads) == (total, 0)
    assert most_sessions == 1
    assert takeover <= Tuning().lock_retry + 5
