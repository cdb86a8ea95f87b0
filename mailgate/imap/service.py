"""The ``imap`` role of ``mailgate serve``: one poller thread per enabled mailbox
(and one Sent-folder watcher per user who has it switched on, :mod:`.sent_watch`).

The dealer edits mailboxes in the web UI while the service runs, so the
supervisor re-reads the ``[[imap]]`` settings every ``reload_seconds`` and
restarts exactly the pollers whose settings changed; the others keep their
connection (and their IDLE) undisturbed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.imap.settings import Mailbox, load_mailboxes

if TYPE_CHECKING:  # imapclient is imported only once a mailbox is configured
    from mailgate.imap.poller import Poller
    from mailgate.imap.tuning import Tuning

log = logging.getLogger("mailgate.imap")


@dataclass
class _Running:
    mailbox: Mailbox
    poller: Poller
    stop: threading.Event
    thread: threading.Thread


class PollerGroup:
    """The running pollers, kept in line with the configured mailboxes."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        tuning: Tuning | None = None,
        on_stored: Callable[[], None] = lambda: None,
        max_message_size: int = 25 * 1024 * 1024,
    ) -> None:
        self.factory, self.tuning, self.on_stored = factory, tuning, on_stored
        self.max_message_size = max_message_size
        self.running: dict[str, _Running] = {}

    def sync(self, mailboxes: list[Mailbox]) -> None:
        wanted = {m.name: m for m in mailboxes if m.enabled}
        for name, run in list(self.running.items()):
            if wanted.get(name) != run.mailbox:
                log.info("%s: settings changed or removed; stopping its poller", name)
                self._stop(name)
        for name, mailbox in wanted.items():
            if name not in self.running:
                self._start(mailbox)

    def fetch_now(self, name: str | None = None) -> None:
        """Wake the named (or every) poller out of IDLE or its sleep."""
        for run_name, run in self.running.items():
            if name is None or run_name == name:
                run.poller.wake.set()

    def stop_all(self, timeout: float = 30) -> None:
        for name in list(self.running):
            self._stop(name, timeout)

    def _start(self, mailbox: Mailbox) -> None:
        from mailgate.imap.poller import Poller
        from mailgate.imap.tuning import Tuning

        stop = threading.Event()
        tuning = self.tuning or Tuning(max_message_size=self.max_message_size)
        poller = Poller(self.factory, mailbox, tuning, stop, self.on_stored)
        thread = threading.Thread(target=poller.run, name=f"imap-{mailbox.name}", daemon=True)
        thread.start()
        self.running[mailbox.name] = _Running(mailbox, poller, stop, thread)
        log.info("%s: polling %s:%s %s", mailbox.name, mailbox.host, mailbox.port, mailbox.folder)

    def _stop(self, name: str, timeout: float = 30) -> None:
        run = self.running.pop(name)
        run.stop.set()
        run.thread.join(timeout)


def run_imap(
    factory: sessionmaker[Session],
    settings: Settings,
    stop: threading.Event,
    on_stored: Callable[[], None] = lambda: None,
    *,
    tuning: Tuning | None = None,
    reload_seconds: float = 30.0,
) -> None:
    """Run pollers for all enabled mailboxes, and the users' Sent-folder watchers, until stopped."""
    from mailgate.imap.sent_folder import load_sent_folders
    from mailgate.imap.sent_watch import SentWatchers

    group = PollerGroup(factory, tuning, on_stored, settings.smtp.max_message_size)
    sent = SentWatchers(factory)
    try:
        while not stop.is_set():
            try:
                with factory() as session:
                    group.sync(load_mailboxes(session))
            except Exception:  # noqa: BLE001 - keep the running pollers; retry later
                log.exception("could not read the IMAP mailbox settings")
            try:
                with factory() as session:
                    sent.sync(load_sent_folders(session))
            except Exception:  # noqa: BLE001 - keep the running watchers; retry later
                log.exception("could not read the users' Sent-folder settings")
            stop.wait(reload_seconds)
    finally:
        group.stop_all()
        sent.stop_all()
