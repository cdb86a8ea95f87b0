"""Talking IMAP: one pass over a folder, and the long-running IDLE/poll loop.

Order of one batch (the exactly-once argument):

1. ``UID FETCH ... BODY.PEEK[]`` (PEEK: reading does not set \\Seen, so a
   crash before step 2 leaves the message looking untouched);
2. store mails + their import keys and **commit** (``state.import_mails``);
3. the after-import action on the server (flag \\Seen, move, or delete);
4. advance the cursor and commit.

A crash before 2 loses nothing (the message is still on the server, the
cursor not advanced); a crash between 2 and 4 makes the next pass fetch the
message again, where the import key turns the second store into a no-op and
the action is simply repeated.  Oversize messages are never fetched: they get
\\Flagged, one admin mail (outbox idempotency key) and the cursor moves past.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.db import session_scope
from mailgate.imap import state
from mailgate.imap.errors import FolderMissing, describe_error
from mailgate.imap.rules import (
    IDLE_RENEW_SECONDS,
    Cursor,
    advance,
    backoff_delay,
    chunks,
    oversize_key,
    pending_uids,
    resolve_cursor,
    size_batches,
    split_oversize,
)
from mailgate.imap.settings import Mailbox, load_mailboxes, read_secret
from mailgate.ingest.store import RawMail

log = logging.getLogger("mailgate.imap")
SEEN, FLAGGED = b"\\Seen", b"\\Flagged"
_HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT FROM DATE)]"
_HEADER_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT FROM DATE)]"


@dataclass(frozen=True)
class Tuning:
    """Knobs of the poller; defaults suit a dealer's inbox, tests shrink the waits."""

    batch_size: int = 100  # messages per FETCH + commit
    max_per_pass: int = 1000  # then the loop yields (stop, fetch-now) before going on
    max_message_size: int = 25 * 1024 * 1024  # as for SMTP
    fetch_budget: int = 32 * 1024 * 1024  # bytes of mail held in memory per FETCH
    socket_timeout: float = 60.0
    idle_renew: float = IDLE_RENEW_SECONDS
    idle_slice: float = 1.0  # how often an IDLE wait looks at the stop flag
    backoff_base: float = 2.0
    backoff_cap: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Tuning:
        return cls(max_message_size=settings.smtp.max_message_size)


@dataclass
class PassReport:
    """What one fetch did; ``error`` is the plain-words status message, if any."""

    mailbox: str
    imported: int = 0
    duplicates: int = 0
    oversize: int = 0
    more: bool = False
    error: str | None = None
    stored_ids: list[int] = field(default_factory=list)


def connect(mailbox: Mailbox, tuning: Tuning) -> IMAPClient:
    """Open, secure and log in; the caller closes.  Raises on any failure."""
    secret = read_secret(mailbox)
    context = ssl.create_default_context()
    client = IMAPClient(
        mailbox.host,
        mailbox.port,
        ssl=mailbox.security == "ssl",
        ssl_context=context,
        timeout=tuning.socket_timeout,
    )
    try:
        if mailbox.security == "starttls":
            client.starttls(context)
        if mailbox.uses_oauth2:
            client.oauth2_login(mailbox.username, secret)
        else:
            client.login(mailbox.username, secret)
    except BaseException:
        close_quietly(client)
        raise
    return client


def close_quietly(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        with contextlib.suppress(Exception):
            client.shutdown()


def select(client: IMAPClient, folder: str) -> int:
    """Select the folder read-write; returns its UIDVALIDITY."""
    try:
        info = client.select_folder(folder)
    except IMAPClientError as exc:
        if not client.folder_exists(folder):
            raise FolderMissing(f"the folder {folder!r} does not exist on the server") from exc
        raise
    return int(info[b"UIDVALIDITY"])


def run_pass(
    client: IMAPClient,
    factory: sessionmaker[Session],
    mailbox: Mailbox,
    tuning: Tuning,
    *,
    stop: threading.Event | None = None,
) -> PassReport:
    """Import up to ``tuning.max_per_pass`` new messages of the mailbox's folder."""
    report = PassReport(mailbox.name)
    uidvalidity = select(client, mailbox.folder)
    cursor, reset = resolve_cursor(
        state.load_cursor(factory, mailbox.name, mailbox.folder), uidvalidity
    )
    if reset:
        log.warning(
            "%s: UIDVALIDITY of %s changed; re-reading the folder (stored mails are skipped)",
            mailbox.name,
            mailbox.folder,
        )
        state.save_cursor(factory, mailbox.name, mailbox.folder, cursor)
    uids, report.more = pending_uids(
        client.search(["UID", f"{cursor.last_uid + 1}:*"]), cursor, tuning.max_per_pass
    )
    for batch in chunks(uids, tuning.batch_size):
        if stop is not None and stop.is_set():
            report.more = True
            break
        cursor = _run_batch(client, factory, mailbox, tuning, cursor, batch, report)
    return report


def _run_batch(
    client: IMAPClient,
    factory: sessionmaker[Session],
    mailbox: Mailbox,
    tuning: Tuning,
    cursor: Cursor,
    batch: list[int],
    report: PassReport,
) -> Cursor:
    sizes = {
        uid: int(data[b"RFC822.SIZE"]) for uid, data in client.fetch(batch, ["RFC822.SIZE"]).items()
    }
    normal, oversize = split_oversize(sizes, tuning.max_message_size)
    present: list[int] = []
    for group in size_batches(normal, sizes, tuning.fetch_budget):
        bodies = client.fetch(group, ["BODY.PEEK[]"])
        # A UID missing from the answer was expunged meanwhile (someone deleted it).
        found = [uid for uid in group if b"BODY[]" in bodies.get(uid, {})]
        mails = [
            RawMail(raw=bytes(bodies[uid][b"BODY[]"]), channel="imap", mailbox=mailbox.label)
            for uid in found
        ]
        stored, duplicates = state.import_mails(factory, mailbox.name, mails)
        present.extend(found)
        report.imported += len(stored)
        report.duplicates += duplicates
        report.stored_ids.extend(m.id for m in stored)
    if oversize:
        _report_oversize(client, factory, mailbox, tuning, cursor, oversize, sizes)
        client.add_flags(oversize, [FLAGGED])
        report.oversize += len(oversize)
    apply_action(client, mailbox, present)
    cursor = advance(cursor, batch)
    state.save_cursor(factory, mailbox.name, mailbox.folder, cursor)
    return cursor


def apply_action(client: IMAPClient, mailbox: Mailbox, uids: list[int]) -> None:
    """The after-import action, run only once the mails are committed."""
    if not uids:
        return
    action = mailbox.after_import
    if action.action == "flag":
        client.add_flags(uids, [SEEN])
        return
    if action.action == "move":
        if not client.folder_exists(action.folder):
            client.create_folder(action.folder)
        if client.has_capability("MOVE"):
            client.move(uids, action.folder)
            return
        client.copy(uids, action.folder)
    client.delete_messages(uids)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        client.expunge()  # without UIDPLUS all \Deleted messages of the folder go


def _report_oversize(
    client: IMAPClient,
    factory: sessionmaker[Session],
    mailbox: Mailbox,
    tuning: Tuning,
    cursor: Cursor,
    uids: list[int],
    sizes: dict[int, int],
) -> None:
    """Tell the admin once per message (outbox key survives UIDVALIDITY resets)."""
    from mailgate.dealer_settings import load_dealer_config
    from mailgate.outbound.outbox import enqueue_template

    headers = client.fetch(uids, [_HEADER_ITEM])
    parser = BytesHeaderParser(policy=default_policy)
    keys = []
    with session_scope(factory) as session:
        dealer = load_dealer_config(session)
        for uid in uids:
            head = parser.parsebytes(bytes(headers.get(uid, {}).get(_HEADER_KEY, b"")))
            message_id = str(head.get("Message-ID", "") or "").strip()
            identity = message_id or f"{cursor.uidvalidity}:{uid}"
            digest = hashlib.sha256(f"{mailbox.name}|{identity}|{sizes[uid]}".encode()).hexdigest()
            keys.append(oversize_key(mailbox.name, cursor.uidvalidity or 0, uid))
            log.warning(
                "%s: message UID %s is %d bytes, over the limit of %d; left on the server",
                mailbox.name,
                uid,
                sizes[uid],
                tuning.max_message_size,
            )
            if not dealer.admin_address:
                continue
            enqueue_template(
                session,
                dealer,
                key=f"imap-oversize:{digest[:40]}",
                purpose="imap_oversize",
                template="imap_oversize",
                language=dealer.language,
                context={
                    "mailbox": mailbox.name,
                    "folder": mailbox.folder,
                    "size_mb": f"{sizes[uid] / 1024 / 1024:.1f}",
                    "limit_mb": f"{tuning.max_message_size / 1024 / 1024:.1f}",
                    "subject": str(head.get("Subject", "") or ""),
                    "sender": str(head.get("From", "") or ""),
                    "date": str(head.get("Date", "") or ""),
                },
                to=[("", dealer.admin_address)],
            )
        state.remember_oversize(session, mailbox.name, mailbox.folder, keys)


def fetch_mailbox(factory: sessionmaker[Session], mailbox: Mailbox, tuning: Tuning) -> PassReport:
    """Connect, drain the folder, disconnect; never raises (errors go to the status)."""
    from mailgate.dealer_settings import load_dealer_config

    total = PassReport(mailbox.name)
    client = None
    state.record_attempt(factory, mailbox.name, mailbox.folder)
    try:
        client = connect(mailbox, tuning)
        while True:
            report = run_pass(client, factory, mailbox, tuning)
            total.imported += report.imported
            total.duplicates += report.duplicates
            total.oversize += report.oversize
            total.stored_ids.extend(report.stored_ids)
            if not report.more:
                break
        with factory() as session:
            tz = load_dealer_config(session).timezone
        state.record_success(factory, mailbox.name, mailbox.folder, total.imported, tz)
    except Exception as exc:  # noqa: BLE001 - one mailbox's trouble is reported, not raised
        total.error = describe_error(exc, mailbox)
        log.warning("%s: %s", mailbox.name, total.error)
        _record_error(factory, mailbox, total.error)
    finally:
        close_quietly(client)
    return total


def fetch_now(
    factory: sessionmaker[Session],
    settings: Settings,
    name: str | None = None,
    tuning: Tuning | None = None,
) -> list[PassReport]:
    """ "Fetch now" (CLI and web UI): one full fetch of every (or the named) mailbox.

    Safe while ``mailgate serve`` polls the same mailbox: the import keys make
    the two fetches' stores idempotent and the cursor only moves forward.
    """
    tuning = tuning or Tuning.from_settings(settings)
    with factory() as session:
        mailboxes = load_mailboxes(session, enabled_only=name is None)
    if name is not None:
        mailboxes = [m for m in mailboxes if m.name == name]
        if not mailboxes:
            raise LookupError(f"no IMAP mailbox named {name!r} in the dealer settings")
    return [fetch_mailbox(factory, mailbox, tuning) for mailbox in mailboxes]


def _record_error(factory: sessionmaker[Session], mailbox: Mailbox, message: str) -> None:
    try:
        state.record_error(factory, mailbox.name, mailbox.folder, message)
    except Exception:  # noqa: BLE001 - the database may be the thing that is down
        log.exception("%s: could not record the error in the database", mailbox.name)


def _announces_news(responses: list[tuple[object, ...]]) -> bool:
    return any(len(r) > 1 and r[1] == b"EXISTS" for r in responses)


class Poller:
    """The long-running loop for one mailbox: pass, then IDLE (or sleep), repeat.

    Every failure (server down, wrong password, database busy) is recorded in
    the status, waited out with exponential backoff and jitter, and retried;
    it never leaves this thread, so other mailboxes carry on.
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

    def run(self) -> None:
        from mailgate.dealer_settings import load_dealer_config

        while not self.stop.is_set():
            client = None
            try:
                with self.factory() as session:
                    self.tz = load_dealer_config(session).timezone
                client = connect(self.mailbox, self.tuning)
                self._serve(client)
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                self.failures += 1
                message = describe_error(exc, self.mailbox)
                log.warning("%s: %s", self.mailbox.name, message)
                _record_error(self.factory, self.mailbox, message)
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
            report = run_pass(client, self.factory, self.mailbox, self.tuning, stop=self.stop)
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
                # Dovecot (at least) does not announce at the start of IDLE what
                # arrived since the last command; a NOOP right before it does.
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
