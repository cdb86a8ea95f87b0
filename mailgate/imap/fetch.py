"""One fetch over a folder, and "fetch now" (CLI and web UI).

Order of one batch (the exactly-once argument):

1. ``UID FETCH ... (BODY.PEEK[] INTERNALDATE)`` (PEEK: reading does not set
   \\Seen, so a crash before step 2 leaves the message looking untouched);
2. store mails + their import keys and **commit** (``state.import_mails``),
   each with the server's INTERNALDATE as ``received_at``;
3. the after-import action on the server (:mod:`mailgate.imap.actions`);
4. advance the cursor and commit.

A crash before 2 loses nothing (the message is still on the server, the
cursor not advanced); a crash between 2 and 4 makes the next pass fetch the
message again, where the import key turns the second store into a no-op and
the action is simply repeated.  Oversize messages are never fetched: they get
\\Flagged, one admin mail (:mod:`mailgate.imap.oversize`) and the cursor
moves past.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from imapclient import IMAPClient
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.imap import state
from mailgate.imap.actions import FLAGGED, apply_action, sweep
from mailgate.imap.connection import Folder, close_quietly, connect, select
from mailgate.imap.errors import LockLost, describe_error
from mailgate.imap.oversize import report_oversize
from mailgate.imap.rules import (
    Cursor,
    advance,
    chunks,
    pending_uids,
    received_time,
    resolve_cursor,
    size_batches,
    split_oversize,
)
from mailgate.imap.settings import Mailbox, load_mailboxes
from mailgate.imap.tuning import Tuning
from mailgate.ingest.store import RawMail
from mailgate.models import utcnow

log = logging.getLogger("mailgate.imap")


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


def run_pass(
    client: IMAPClient,
    factory: sessionmaker[Session],
    mailbox: Mailbox,
    tuning: Tuning,
    *,
    stop: threading.Event | None = None,
    holds_lock: Callable[[], bool] | None = None,
) -> PassReport:
    """Import up to ``tuning.max_per_pass`` new messages of the mailbox's folder.

    ``holds_lock`` (the poller's advisory lock, :mod:`mailgate.imap.lock`) is
    asked before every batch: once the lock is lost another instance may take
    the mailbox over, so this pass ends at the latest one batch later.
    """
    report = PassReport(mailbox.name)
    _check_lock(holds_lock)
    folder = select(client, mailbox.folder)
    sweep(client, mailbox, folder)
    cursor, reset = resolve_cursor(
        state.load_cursor(factory, mailbox.name, mailbox.folder), folder.uidvalidity
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
        _check_lock(holds_lock)
        cursor = _run_batch(client, factory, mailbox, tuning, folder, cursor, batch, report)
    return report


def _check_lock(holds_lock: Callable[[], bool] | None) -> None:
    if holds_lock is not None and not holds_lock():
        raise LockLost("the database session holding the poller lock was lost")


def _run_batch(
    client: IMAPClient,
    factory: sessionmaker[Session],
    mailbox: Mailbox,
    tuning: Tuning,
    folder: Folder,
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
        bodies = client.fetch(group, ["BODY.PEEK[]", "INTERNALDATE"])
        # A UID missing from the answer was expunged meanwhile (someone deleted it).
        found = [uid for uid in group if b"BODY[]" in bodies.get(uid, {})]
        now = utcnow()
        mails = [
            RawMail(
                raw=bytes(bodies[uid][b"BODY[]"]),
                channel="imap",
                mailbox=mailbox.label,
                received_at=received_time(bodies[uid].get(b"INTERNALDATE"), now),
            )
            for uid in found
        ]
        stored, duplicates = state.import_mails(factory, mailbox.name, mails)
        present.extend(found)
        report.imported += len(stored)
        report.duplicates += duplicates
        report.stored_ids.extend(m.id for m in stored)
    if oversize:
        report_oversize(client, factory, mailbox, tuning.max_message_size, cursor, oversize, sizes)
        client.add_flags(oversize, [FLAGGED])
        report.oversize += len(oversize)
    apply_action(client, mailbox, present, folder)
    cursor = advance(cursor, batch)
    state.save_cursor(factory, mailbox.name, mailbox.folder, cursor)
    return cursor


def fetch_mailbox(factory: sessionmaker[Session], mailbox: Mailbox, tuning: Tuning) -> PassReport:
    """Connect, drain the folder, disconnect; never raises (errors go to the status)."""
    from mailgate.dealer_settings import load_dealer_config

    total = PassReport(mailbox.name)
    client = None
    state.record_attempt(factory, mailbox.name, mailbox.folder)
    try:
        client = connect(mailbox, tuning.socket_timeout)
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
        record_error(factory, mailbox, total.error)
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


def record_error(factory: sessionmaker[Session], mailbox: Mailbox, message: str) -> None:
    """Keep the status message; a database that is down is logged, not raised."""
    try:
        state.record_error(factory, mailbox.name, mailbox.folder, message)
    except Exception:  # noqa: BLE001 - the database may be the thing that is down
        log.exception("%s: could not record the error in the database", mailbox.name)
