"""The long-running loop for one mailbox: a fetch pass, then IDLE (or sleep), repeat.

``mailgate serve`` runs one :class:`Poller` per enabled mailbox in its own
thread (:mod:`mailgate.imap.service`); the pass itself is
:func:`mailgate.imap.fetch.run_pass`, the connection :mod:`mailgate.imap.connection`.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, tzinfo

from imapclient import IMAPClient
from sqlalchemy.orm import Session, sessionmaker

from mailgate.imap import state
from mailgate.imap.connection import close_quietly, connect
from mailgate.imap.errors import describe_error
from mailgate.imap.fetch import record_error, run_pass
from mailgate.imap.lock import MailboxLock
from mailgate.imap.rules import backoff_delay
from mailgate.imap.settings import Mailbox
from mailgate.imap.tuning import Tuning

log = logging.getLogger("mailgate.imap")


def _announces_news(responses: list[tuple[object, ...]]) -> bool:
    return any(len(r) > 1 and r[1] == b"EXISTS" for r in responses)


def _news_already_read(client: IMAPClient) -> bool:
    """True when the server sent more than "+ idling" and it sits in imaplib's read buffer.

    Why: Dovecot syncs right after "+ idling" and announces mail that came since
    the last command (the NOOP before IDLE) at once, often in the same segment.
    imaplib reads the socket through a buffered file, so that announcement is read
    along with "+ idling" and left in the buffer, where ``idle_check``'s poll() on
    the socket never sees it (nor data decrypted but not yet read under TLS): the
    mail would wait for the next renewal, up to the mailbox interval.
    """
    reader = getattr(getattr(client, "_imap", None), "file", None)
    peek = getattr(reader, "peek", None)
    if peek is None:
        return False
    sock = client.socket()
    sock.setblocking(False)  # peek reads the socket only if the buffer is empty: never wait
    try:
        return bool(peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.setblocking(True)
        client._set_read_timeout()  # as idle_check() leaves it


class Poller:
    """The long-running loop for one mailbox: pass, then IDLE (or sleep), repeat.

    Every failure (server down, wrong password, database busy) is recorded in
    the status, waited out with exponential backoff and jitter, and retried;
    it never leaves this thread, so other mailboxes carry on.  On PostgreSQL
    it polls only while it holds the mailbox's advisory lock
    (:mod:`mailgate.imap.lock`); otherwise another instance does, and this one
    stands by, asking again every ``tuning.lock_retry`` seconds.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        mailbox: Mailbox,
        tuning: Tuning,
        stop: threading.Event,
        on_stored: Callable[[], None] = lambda: None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.factory, self.mailbox, self.tuning = factory, mailbox, tuning
        self.stop, self.on_stored, self.jitter = stop, on_stored, jitter
        self.wake = threading.Event()  # "fetch now" from inside the process
        self.failures = 0
        self.tz: tzinfo = UTC
        self.lock = MailboxLock(factory.kw["bind"], mailbox.name)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.lock.release()

    def _run(self) -> None:
        from mailgate.dealer_settings import load_dealer_config

        standing_by = False
        while not self.stop.is_set():
            client = None
            try:
                if not self.lock.acquire():
                    if not standing_by:
                        log.info("%s: another instance polls this mailbox", self.mailbox.name)
                    standing_by = True
                    self._sleep(self.tuning.lock_retry)
                    continue
                standing_by = False
                with self.factory() as session:
                    self.tz = load_dealer_config(session).timezone
                client = connect(self.mailbox, self.tuning.socket_timeout)
                self._serve(client)
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                self.failures += 1
                message = describe_error(exc, self.mailbox)
                log.warning("%s: %s", self.mailbox.name, message)
                record_error(self.factory, self.mailbox, message)
                delay = backoff_delay(
                    self.failures,
                    base=self.tuning.backoff_base,
                    cap=self.tuning.backoff_cap,
                    jitter=self.jitter(),
                )
                self._sleep(delay)
            finally:
                close_quietly(client)

    def _serve(self, client: IMAPClient) -> None:
        idle = client.has_capability("IDLE")
        while not self.stop.is_set():
            self.wake.clear()
            state.record_attempt(self.factory, self.mailbox.name, self.mailbox.folder)
            report = run_pass(
                client,
                self.factory,
                self.mailbox,
                self.tuning,
                stop=self.stop,
                holds_lock=self.lock.alive,
            )
            state.record_success(
                self.factory, self.mailbox.name, self.mailbox.folder, report.imported, self.tz
            )
            self.failures = 0
            if report.imported:
                log.info("%s: imported %d mail(s)", self.mailbox.name, report.imported)
                self.on_stored()
            if report.more or report.imported or report.duplicates or report.oversize:
                # A mail that arrived during a busy pass was announced (EXISTS) in
                # the answer to one of its FETCH/STORE commands, which nobody
                # reads; IDLE would not announce it again.  Only a pass that found
                # nothing ends with its SEARCH as the last command before IDLE.
                continue
            if idle:
                # A NOOP asks for what arrived since the last command before IDLE:
                # servers need not announce it when IDLE starts (Dovecot does, in
                # the same segment as "+ idling": see _news_already_read).
                if _announces_news(client.noop()[1]):
                    continue
                self._idle(client)
            else:
                self._sleep(self.mailbox.interval)

    def _idle(self, client: IMAPClient) -> None:
        """Wait in IDLE until the server reports news, renewing well inside its limit."""
        deadline = time.monotonic() + min(self.tuning.idle_renew, self.mailbox.interval)
        client.idle()
        try:
            if _news_already_read(client):
                return  # idle_done() reads it; the next pass fetches the mail
            while not self.stop.is_set() and not self.wake.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if client.idle_check(timeout=min(self.tuning.idle_slice, remaining)):
                    break  # EXISTS/EXPUNGE/FETCH: whatever it is, a pass will tell
        finally:
            client.idle_done()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and not self.wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.stop.wait(min(remaining, 1.0))
