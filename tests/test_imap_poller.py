"""The long-running IMAP pollers against a real Dovecot: IDLE, restarts, isolation."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import import_settings
from mailgate.imap.poller import Poller
from mailgate.imap.service import PollerGroup
from mailgate.imap.settings import load_mailboxes
from mailgate.imap.state import MailboxStatus, mailbox_status
from mailgate.imap.tuning import Tuning
from mailgate.models import ImapState

from .conftest import DEALER_TOML
from .dovecot import Dovecot
from .imap_helpers import (
    client_for,
    count_stored,
    distinct_stored,
    dovecot,  # noqa: F401 - fixture
    flags_in,
    imap_toml,
    mailbox_for,
    wait_until,
)
from .mails import inquiry

FAST = Tuning(idle_slice=0.2, backoff_base=0.2, backoff_cap=1.0, socket_timeout=10)


def _start(poller: Poller) -> threading.Thread:
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    return thread


def _has_succeeded(factory: sessionmaker[Session], name: str) -> bool:
    with factory() as session:
        state = session.get(ImapState, (name, "INBOX"))
        return state is not None and state.last_success_at is not None


@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_idle_delivers_an_appended_mail_within_two_seconds(
    dovecot: Dovecot,  # noqa: F811
    sqlite_url: str,
) -> None:
    """I4: mailgate waits in IDLE (renewal and a frozen server: test_imap_faults.py)."""
    from mailgate import db

    engine = db.create_db_engine(sqlite_url)
    factory = db.make_session_factory(engine)
    stop, stored = threading.Event(), threading.Event()
    mailbox = mailbox_for(dovecot, interval=300.0)  # no polling to help out: IDLE only
    poller = Poller(factory, mailbox, FAST, stop, on_stored=stored.set)
    thread = _start(poller)
    try:
        assert wait_until(lambda: _has_succeeded(factory, mailbox.name), 10)
        time.sleep(0.3)  # the poller is in IDLE now
        client = client_for(dovecot)
        started = time.monotonic()
        client.append("INBOX", inquiry(1))
        client.logout()
        assert wait_until(lambda: count_stored(factory) == 1, 5)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"took {elapsed:.2f}s"
        assert stored.wait(2)  # the worker is woken (right after the commit)
        assert wait_until(lambda: flags_in(dovecot) == [{b"\\Seen"}], 5)
    finally:
        stop.set()
        thread.join(10)
        engine.dispose()
    assert not thread.is_alive()


def test_server_restart_mid_poll_loses_and_doubles_nothing(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    """I3: the server goes away mid-backlog (connections cut) and comes back; 0 lost, 0 doubled."""
    template = inquiry(0)
    for n in range(400):
        dovecot.deliver("anna", template.replace(b"inquiry-0@", b"inquiry-%d@" % n))
    stop = threading.Event()
    # A connection cut mid-FETCH may hang instead of failing: a short socket
    # timeout makes the poller notice within the test's patience (production: 60 s).
    tuning = Tuning(
        batch_size=5,
        max_per_pass=50,
        idle_slice=0.2,
        backoff_base=0.2,
        backoff_cap=1.0,
        socket_timeout=5.0,
    )
    mailbox = mailbox_for(dovecot)
    thread = _start(Poller(dealer, mailbox, tuning, stop))
    try:
        assert wait_until(lambda: count_stored(dealer) >= 20, 30)
        dovecot.stop()  # cuts the poller off in the middle of the backlog
        in_flight = count_stored(dealer)
        assert in_flight < 400, "the backlog drained before the restart; test proves nothing"
        for n in range(400, 420):  # mail keeps arriving while IMAP is down
            dovecot.deliver("anna", template.replace(b"inquiry-0@", b"inquiry-%d@" % n))
        assert wait_until(lambda: _last_error(dealer) is not None, 10)
        dovecot.start()
        assert wait_until(lambda: count_stored(dealer) == 420, 90), count_stored(dealer)
        assert wait_until(lambda: _last_error(dealer) is None, 10)
    finally:
        stop.set()
        thread.join(10)
    assert distinct_stored(dealer) == 420 and count_stored(dealer) == 420
    assert all(flags == {b"\\Seen"} for flags in flags_in(dovecot))


def _last_error(factory: sessionmaker[Session]) -> str | None:
    with factory() as session:
        state = session.get(ImapState, ("postfach-anna", "INBOX"))
        return state.last_error if state else None


def test_one_failing_mailbox_does_not_stall_the_others(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    with session_scope(dealer) as session:
        import_settings(
            session,
            DEALER_TOML
            + imap_toml(dovecot, "ben", "service", password="falsch")
            + imap_toml(dovecot, "anna", "verkauf"),
        )
        mailboxes = load_mailboxes(session)
    group = PollerGroup(dealer, FAST)
    group.sync(mailboxes)
    try:
        dovecot.deliver("anna", inquiry(1))
        assert wait_until(lambda: count_stored(dealer) == 1, 10)
        client = client_for(dovecot)
        client.append("INBOX", inquiry(2))  # through IDLE, while "service" keeps failing
        client.logout()
        assert wait_until(lambda: count_stored(dealer) == 2, 10)
        assert wait_until(lambda: _statuses(dealer)["verkauf"].imported_today == 2, 5)
        statuses = _statuses(dealer)
        assert statuses["verkauf"].ok and statuses["verkauf"].imported_today == 2
        assert statuses["service"].last_error is not None
        assert "rejected the user name or password for ben" in statuses["service"].last_error
        assert group.running["service"].poller.failures >= 1
    finally:
        group.stop_all(10)
    assert not group.running


def _statuses(factory: sessionmaker[Session]) -> dict[str, MailboxStatus]:
    with factory() as session:
        return {s.name: s for s in mailbox_status(session)}


def test_changed_settings_restart_only_that_poller(
    dovecot: Dovecot,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    group = PollerGroup(dealer, FAST)
    anna, ben = mailbox_for(dovecot, "anna"), mailbox_for(dovecot, "ben")
    group.sync([anna, ben])
    try:
        first_anna = group.running[anna.name].thread
        first_ben = group.running[ben.name].thread
        from dataclasses import replace

        group.sync([anna, replace(ben, folder="Archiv")])
        assert group.running[anna.name].thread is first_anna
        assert group.running[ben.name].thread is not first_ben
        assert not first_ben.is_alive()
        group.sync([anna])
        assert set(group.running) == {anna.name}
    finally:
        group.stop_all(10)
