"""Sent-folder reply detection: a salesperson's answer from his own mail client counts.

Some salespeople answer a lead by writing to the customer from their usual
mail program instead of replying to the notification (the tracking address).
With ``sent_folder`` switched on in their user settings, mailgate reads that
account's Sent folder and treats a mail to the customer of one of *their*
open leads, sent after the lead came in, as the response: the same effect
as a tracked reply (first response, status *contacted*, reminders stop) and
the protocol line "answered from …'s mail client".

Read-only by construction: the folder is opened with ``EXAMINE`` and only
``BODY.PEEK`` of a few header fields is fetched, so no flag changes (not even
\\Seen) and nothing is moved or deleted.  Nothing of the mails is kept but,
for a mail that counted, its Message-ID and the lead (the idempotency key).

A pass: new UIDs above the cursor (per user and folder, UIDVALIDITY-aware);
on first contact or after a UIDVALIDITY change, the mails since the user's
oldest open lead came in (older mail cannot answer anything), counted at
most once per (Message-ID, lead) however often they are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.imap import sent_record
from mailgate.imap.connection import close_quietly, connect
from mailgate.imap.errors import FolderMissing, describe_error
from mailgate.imap.rules import AfterImport, Cursor, advance, chunks, pending_uids, resolve_cursor
from mailgate.imap.sent_mail import FETCH_ITEMS, header_block, parse_sent
from mailgate.imap.settings import Mailbox
from mailgate.models import User, utcnow

BATCH = 100  # header FETCHes per round trip and commit
MAX_PER_PASS = 1000  # then the watcher yields (stop) before going on
SOCKET_TIMEOUT = 60.0


@dataclass(frozen=True)
class SentFolder:
    """One user's watched Sent folder; ``mailbox`` carries the connection settings."""

    user_id: int
    email: str
    mailbox: Mailbox
    dealer_addresses: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        return self.mailbox.folder


@dataclass
class SentReport:
    """What one pass did; ``error`` is the plain-words status message, if any."""

    email: str
    read: int = 0
    answered: int = 0
    more: bool = False
    error: str | None = None


def sent_folder_of(user_id: int, email: str, entry: dict[str, Any]) -> SentFolder:
    """A :class:`SentFolder` from a user's validated ``sent_folder`` table."""
    from mailgate.dealer_settings import parse_duration

    mailbox = Mailbox(
        name=f"sent-{user_id}",
        host=str(entry["host"]),
        port=int(entry["port"]),
        security=str(entry["security"]),
        username=str(entry["username"]),
        password=str(entry["password"]),
        password_file=str(entry["password_file"]),
        folder=str(entry["folder"]),
        interval=parse_duration(str(entry["interval"])).total_seconds(),
        after_import=AfterImport("none"),  # never acts on the server
        ca_file=str(entry["ca_file"]),
    )
    return SentFolder(user_id, email.lower(), mailbox)


def load_sent_folders(session: Session) -> list[SentFolder]:
    """Every active user's switched-on Sent folder, in settings order."""
    from mailgate.dealer_settings import load_dealer_config

    dealer = load_dealer_config(session)
    ids = {u.email.lower(): u.id for u in session.scalars(select(User).where(User.active))}
    result = []
    for entry in dealer.document["users"]:
        email = entry["email"].lower()
        if entry["sent_folder"]["enabled"] and email in ids:
            watch = sent_folder_of(ids[email], email, entry["sent_folder"])
            result.append(SentFolder(watch.user_id, watch.email, watch.mailbox, dealer.addresses))
    return result


def examine(client: IMAPClient, folder: str) -> dict[bytes, Any]:
    """Open the folder read-only (EXAMINE): nothing in it can change by our reading."""
    try:
        return client.select_folder(folder, readonly=True)
    except IMAPClientError as exc:
        if not client.folder_exists(folder):
            raise FolderMissing(f"the folder {folder!r} does not exist on the server") from exc
        raise


def run_sent_pass(
    client: IMAPClient,
    factory: sessionmaker[Session],
    watch: SentFolder,
    *,
    limit: int = MAX_PER_PASS,
) -> SentReport:
    """Read the new mails of the folder and count those that answer a lead."""
    report = SentReport(watch.email)
    info = examine(client, watch.folder)
    uidvalidity = int(info[b"UIDVALIDITY"])
    stored = sent_record.load_cursor(factory, watch.user_id, watch.folder)
    cursor, _reset = resolve_cursor(stored, uidvalidity)
    if cursor.last_uid == 0:
        since = sent_record.oldest_open_lead(factory, watch.user_id)
        if since is None:  # no open lead: nothing to answer; start at the folder's end
            top = int(info.get(b"UIDNEXT", 1)) - 1
            sent_record.save_cursor(factory, watch.user_id, watch.folder, Cursor(uidvalidity, top))
            return report
        uids = client.search(["SINCE", since.date() - timedelta(days=1)])
    else:
        uids = client.search(["UID", f"{cursor.last_uid + 1}:*"])
    todo, report.more = pending_uids(uids, cursor, limit)
    for batch in chunks(todo, BATCH):
        data = client.fetch(batch, FETCH_ITEMS)
        now = utcnow()
        mails = [
            parse_sent(header_block(data[uid]), data[uid].get(b"INTERNALDATE"), now)
            for uid in batch
            if uid in data
        ]
        report.read += len(mails)
        report.answered += sent_record.record_sent(
            factory, watch.user_id, watch.email, mails, watch.dealer_addresses
        )
        cursor = advance(cursor, batch)
        sent_record.save_cursor(factory, watch.user_id, watch.folder, cursor)
    return report


def check_once(factory: sessionmaker[Session], watch: SentFolder) -> SentReport:
    """Connect, run one pass, record the status; a failure is reported, never raised."""
    sent_record.record_attempt(factory, watch.user_id, watch.folder)
    client = None
    try:
        client = connect(watch.mailbox, SOCKET_TIMEOUT)
        report = run_sent_pass(client, factory, watch)
    except Exception as exc:  # noqa: BLE001 - one user's account must not stop the others
        message = describe_error(exc, watch.mailbox)
        sent_record.record_error(factory, watch.user_id, watch.folder, message)
        return SentReport(watch.email, error=message)
    finally:
        close_quietly(client)
    sent_record.record_success(factory, watch.user_id, watch.folder, report.answered)
    return report


def check_all(factory: sessionmaker[Session]) -> list[SentReport]:
    """One pass over every switched-on Sent folder, one after the other."""
    with factory() as session:
        watches = load_sent_folders(session)
    return [check_once(factory, watch) for watch in watches]
