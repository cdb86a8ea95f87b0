"""``store_raw``: the durable first step for every received mail.

Called by the SMTP handler, the pipe command and the IMAP poller.  It inserts the
bytes exactly as received, plus envelope and hashes, and commits before it
returns, so the caller may acknowledge (SMTP 250, pipe exit 0, IMAP flag) only
when the mail is safely on disk.  It does no parsing beyond pulling the
Message-ID out of the header section, which is bounded by a size cap.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import InboundMail, InboundRaw, InboundStatus, utcnow

log = logging.getLogger("mailgate.ingest")

HEADER_SCAN_LIMIT = 256 * 1024
_MESSAGE_ID_RE = re.compile(
    rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True)
class StoredMail:
    id: int
    sha256: str
    message_id: str | None


def header_section(raw: bytes) -> bytes:
    """The bytes before the first empty line (capped), where the headers live."""
    head = raw[:HEADER_SCAN_LIMIT]
    match = re.search(rb"\r?\n\r?\n", head)
    return head[: match.start()] if match else head


def extract_message_id(raw: bytes) -> str | None:
    """The Message-ID as written (angle brackets kept), or None; never raises."""
    match = _MESSAGE_ID_RE.search(header_section(raw))
    if not match:
        return None
    value = re.sub(rb"\s+", b"", match.group(1)).decode("ascii", "replace")
    return value[:998] or None


@dataclass(frozen=True)
class RawMail:
    """One received mail with its envelope, as handed to :func:`store_raw_batch`."""

    raw: bytes
    channel: str
    envelope_from: str | None = None
    envelope_to: Sequence[str] = ()
    mailbox: str | None = None
    received_at: datetime | None = None


def store_raw(
    factory: sessionmaker[Session],
    raw: bytes,
    *,
    channel: str,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
    mailbox: str | None = None,
    received_at: datetime | None = None,
) -> StoredMail:
    """Insert one raw mail and commit; raises on any failure (nothing half-written)."""
    mail = RawMail(raw, channel, envelope_from, tuple(envelope_to), mailbox, received_at)
    return store_raw_batch(factory, [mail])[0]


def store_raw_batch(factory: sessionmaker[Session], mails: Sequence[RawMail]) -> list[StoredMail]:
    """Insert several mails in one transaction (group commit): all or none are stored."""
    engine = factory.kw["bind"]
    with engine.begin() as conn:
        return insert_raw(conn, mails)


def insert_raw(conn: Connection, mails: Sequence[RawMail]) -> list[StoredMail]:
    """Insert mails on an open connection, inside the caller's transaction (no commit).

    For callers that must write their own idempotency key in the same
    transaction as the mail (the IMAP poller); everyone else uses
    :func:`store_raw_batch`, which commits.
    """
    if not mails:
        return []
    rows = []
    for mail in mails:
        rows.append(
            {
                "received_at": mail.received_at or utcnow(),
                "channel": mail.channel,
                "mailbox": mail.mailbox,
                "envelope_from": (mail.envelope_from or "")[:998] or None,
                "envelope_to": list(mail.envelope_to),
                "size": len(mail.raw),
                "sha256": hashlib.sha256(mail.raw).hexdigest(),
                "message_id": extract_message_id(mail.raw),
                "status": InboundStatus.RECEIVED.value,
                "attempts": 0,
            }
        )
    # Core on a plain connection, not the ORM session: this is the hot path of
    # intake, and the ORM's bulk-insert machinery costs more CPU than SQLite.
    # One INSERT ... RETURNING for the whole batch ("insertmanyvalues").
    mail_table, raw_table = InboundMail.__table__, InboundRaw.__table__
    statement = insert(mail_table).returning(mail_table.c.id, sort_by_parameter_order=True)
    ids = conn.execute(statement, rows).scalars().all()
    conn.execute(
        insert(raw_table),
        [{"inbound_id": new_id, "raw": mail.raw} for new_id, mail in zip(ids, mails, strict=True)],
    )
    stored = [
        StoredMail(id=new_id, sha256=row["sha256"], message_id=row["message_id"])
        for new_id, row in zip(ids, rows, strict=True)
    ]
    for mail, result in zip(mails, stored, strict=True):
        log.debug("stored inbound mail %s (%s, %d bytes)", result.id, mail.channel, len(mail.raw))
    return stored
