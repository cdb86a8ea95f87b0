"""``store_raw``: the durable first step for every received mail.

Called by the SMTP handler, the pipe command and the IMAP poller.  It inserts the
bytes exactly as received, plus envelope and hashes, and commits before it
returns, so the caller may acknowledge (SMTP 250, pipe exit 0, IMAP flag) only
when the mail is safely on disk.  It does no parsing beyond pulling the
Message-ID out of the header section, which is bounded by a size cap.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, insert
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db, wakeup
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
    """Insert several mails in one transaction (group commit): all or none are stored.

    On PostgreSQL the transaction also NOTIFYs workers in other processes (the
    pipe command is always one; a worker of this process is woken by its
    caller), so they are woken only for committed mails.  SQLite has no NOTIFY:
    other processes look with a short indexed read.
    """
    engine = factory.kw["bind"]
    if engine.dialect.name == "sqlite":
        return _store_on_sqlite(engine, mails)
    with engine.begin() as conn:
        stored = insert_raw(conn, mails)
        wakeup.notify_stored(conn)
        return stored


def _rows(mails: Sequence[RawMail]) -> list[dict[str, Any]]:
    """The ``inbound_mail`` rows of ``mails`` (column key → Python value)."""
    return [
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
            "solo_attempts": 0,
        }
        for mail in mails
    ]


@dataclass(frozen=True)
class _SqliteInsert:
    mail_sql: str
    raw_sql: str
    columns: list[tuple[str, Callable[[Any], Any] | None]]  # key, the type's bind processor

    def values(self, row: dict[str, Any]) -> list[Any]:
        return [row[key] if process is None else process(row[key]) for key, process in self.columns]


@functools.cache
def _sqlite_insert(dialect: Dialect) -> _SqliteInsert:
    """The two INSERTs for SQLite's DBAPI and each column's bind processor.

    The SQL is made from the table definitions only (no input reaches it).  The
    processors are the column types' own for this dialect (UTC datetimes,
    JSON), so a row written here reads back exactly like one written through
    SQLAlchemy (``tests/test_ingest_store.py`` compares both).
    """
    mail_table, raw_table = InboundMail.__table__, InboundRaw.__table__
    keys = list(_rows([RawMail(b"", "smtp")])[0])
    marks = ", ".join("?" for _ in keys)
    return _SqliteInsert(
        mail_sql=f"INSERT INTO {mail_table.name} ({', '.join(keys)}) VALUES ({marks}) RETURNING id",  # noqa: S608  # nosec B608 - table metadata only
        raw_sql=f"INSERT INTO {raw_table.name} (inbound_id, raw) VALUES (?, ?)",  # noqa: S608  # nosec B608 - table metadata only
        columns=[
            (key, mail_table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
            for key in keys
        ],
    )


def _store_on_sqlite(engine: Engine, mails: Sequence[RawMail]) -> list[StoredMail]:
    """:func:`store_raw_batch` on SQLite: the same rows through the DBAPI cursor.

    Why: this is intake's hot path; SQLAlchemy's execution layer cost more CPU
    per batch than SQLite, CPU the listener's event loop shares in ``serve``
    (issue 18: the listener about 9 % faster in alternating runs).
    """
    if not mails:
        return []
    insert_sql = _sqlite_insert(engine.dialect)
    rows = _rows(mails)
    stored = []
    with db.sqlite_write_cursor(engine, checkpoint_after=db.INTAKE_AUTOCHECKPOINT_PAGES) as cursor:
        for mail, row in zip(mails, rows, strict=True):
            new_id = cursor.execute(insert_sql.mail_sql, insert_sql.values(row)).fetchone()[0]
            cursor.execute(insert_sql.raw_sql, (new_id, mail.raw))
            stored.append(StoredMail(new_id, row["sha256"], row["message_id"]))
    return stored


def insert_raw(conn: Connection, mails: Sequence[RawMail]) -> list[StoredMail]:
    """Insert mails on an open connection, inside the caller's transaction (no commit).

    For callers that must write their own idempotency key in the same
    transaction as the mail (the IMAP poller); everyone else uses
    :func:`store_raw_batch`, which commits.
    """
    if not mails:
        return []
    rows = _rows(mails)
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
