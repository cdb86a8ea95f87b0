"""The Sent-folder watchers of ``mailgate serve``: one thread per switched-on user.

Run beside the mailbox pollers by :func:`mailgate.imap.service.run_imap`,
which re-reads the settings and calls :meth:`SentWatchers.sync`: a watcher
whose settings changed is restarted, the others carry on.  A watcher keeps
its connection, re-opens the folder every ``interval`` (a salesperson's
account rarely offers push for Sent, and a minute's delay is fine for a
response time), and waits out failures with backoff; a failure is recorded
in the user's status and the log and never touches another user's watcher.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from mailgate.imap import sent_record
from mailgate.imap.connection import close_quietly, connect
from mailgate.imap.errors import describe_error
from mailgate.imap.rules import backoff_delay
from mailgate.imap.sent_folder import SOCKET_TIMEOUT, SentFolder, run_sent_pass

log = logging.getLogger("mailgate.imap")


class SentWatcher:
    """The loop for one user: pass, sleep ``interval``, repeat; reconnect after failures."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        watch: SentFolder,
        stop: threading.Event,
        *,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.factory, self.watch, self.stop = factory, watch, stop
        self.backoff_base, self.backoff_cap, self.jitter = backoff_base, backoff_cap, jitter
        self.failures = 0

    def run(self) -> None:
        watch = self.watch
        while not self.stop.is_set():
            client = None
            try:
                client = connect(watch.mailbox, SOCKET_TIMEOUT)
                while not self.stop.is_set():
                    sent_record.record_attempt(self.factory, watch.user_id, watch.folder)
                    report = run_sent_pass(client, self.factory, watch)
                    sent_record.record_success(
                        self.factory, watch.user_id, watch.folder, report.answered
                    )
                    self.failures = 0
                    if report.answered:
                        log.info(
                            "%s: %d lead(s) answered from the Sent folder",
                            watch.email,
                            report.answered,
                        )
                    if not report.more:
                        self.stop.wait(watch.mailbox.interval)
            except Exception as exc:  # noqa: BLE001 - recorded, retried; others carry on
                self.failures += 1
                message = describe_error(exc, watch.mailbox)
                log.warning("Sent folder of %s: %s", watch.email, message)
                sent_record.record_error(self.factory, watch.user_id, watch.folder, message)
                delay = backoff_delay(
                    self.failures,
                    base=self.backoff_base,
                    cap=self.backoff_cap,
                    jitter=self.jitter(),
                )
                self.stop.wait(delay)
            finally:
                close_quietly(client)


@dataclass
class _Running:
    watch: SentFolder
    stop: threading.Event
    thread: threading.Thread


class SentWatchers:
    """The running watchers, kept in line with the users' settings."""

    def __init__(self, factory: sessionmaker[Session], **options: float) -> None:
        self.factory, self.options = factory, options
        self.running: dict[int, _Running] = {}

    def sync(self, watches: list[SentFolder]) -> None:
        wanted = {w.user_id: w for w in watches}
        for user_id, run in list(self.running.items()):
            if wanted.get(user_id) != run.watch:
                log.info("Sent folder of %s: settings changed or removed", run.watch.email)
                self._stop(user_id)
        for user_id, watch in wanted.items():
            if user_id not in self.running:
                stop = threading.Event()
                watcher = SentWatcher(self.factory, watch, stop, **self.options)
                thread = threading.Thread(
                    target=watcher.run, name=f"sent-{watch.user_id}", daemon=True
                )
                thread.start()
                self.running[user_id] = _Running(watch, stop, thread)
                log.info("Sent folder of %s: watching %s", watch.email, watch.folder)

    def stop_all(self, timeout: float = 30) -> None:
        for user_id in list(self.running):
            self._stop(user_id, timeout)

    def _stop(self, user_id: int, timeout: float = 30) -> None:
        run = self.running.pop(user_id)
        run.stop.set()
        run.thread.join(timeout)
