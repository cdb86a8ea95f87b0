"""The IMAP poller's database side: cursor, import keys, status per mailbox.

Every function here opens and commits its own short transaction, because the
order of commits *is* the safety argument: mails + import keys first, then the
server-side action, then the cursor (see :mod:`mailgate.imap.fetch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mailgate.imap.rules import Cursor, count_today
from mailgate.ingest.store import RawMail, StoredMail, extract_message_id, insert_raw
from mailgate.models import ImapImported, ImapState, utcnow

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
OVERSIZE_LIST_LIMIT = 100  # status page shows the latest; the outbox key keeps "once"


def _state(session: Session, mailbox: str, folder: str) -> ImapState:
    state = session.get(ImapState, (mailbox, folder))
    if state is None:
        state = ImapState(
            mailbox=mailbox,
            folder=folder,
            last_uid=0,
            imported_today=0,
            imported_total=0,
            oversize_reported=[],
        )
        session.add(state)
    return state


def load_cursor(factory: sessionmaker[Session], mailbox: str, folder: str) -> Cursor | None:
    with factory() as session:
        state = session.get(ImapState, (mailbox, folder))
        if state is None or state.uidvalidity is None:
            return None
        return Cursor(state.uidvalidity, state.last_uid)


def save_cursor(factory: sessionmaker[Session], mailbox: str, folder: str, cursor: Cursor) -> None:
    """Store the cursor; moving back within one UIDVALIDITY is refused (two fetches racing)."""
    with factory() as session:
        state = _state(session, mailbox, folder)
        if state.uidvalidity == cursor.uidvalidity:
            state.last_uid = max(state.last_uid or 0, cursor.last_uid)
        else:
            state.uidvalidity, state.last_uid = cursor.uidvalidity, cursor.last_uid
        session.commit()


def import_mails(
    factory: sessionmaker[Session], mailbox: str, mails: Sequence[RawMail]
) -> tuple[list[StoredMail], int]:
    """Store the mails not imported from ``mailbox`` before; returns (stored, duplicates).

    One transaction: the import keys are inserted with ON CONFLICT DO NOTHING
    and only the mails whose key was new are stored, so a re-fetch after a
    crash, a UIDVALIDITY reset or a concurrent "fetch now" stores nothing twice.
    """
    import hashlib

    engine = factory.kw["bind"]
    keyed: dict[str, RawMail] = {}
    for mail in mails:
        keyed.setdefault(hashlib.sha256(mail.raw).hexdigest(), mail)
    if not keyed:
        return [], len(mails)
    now = utcnow()
    with engine.begin() as conn:
        insert = _INSERTS[conn.dialect.name]
        statement = (
            insert(ImapImported)
            .values(
                [
                    {
                        "mailbox": mailbox,
                        "sha256": digest,
                        "message_id": extract_message_id(mail.raw),
                        "imported_at": now,
                    }
                    for digest, mail in keyed.items()
                ]
            )
            .on_conflict_do_nothing(index_elements=["mailbox", "sha256"])
            .returning(ImapImported.sha256)
        )
        fresh = set(conn.execute(statement).scalars())
        stored = insert_raw(conn, [mail for digest, mail in keyed.items() if digest in fresh])
    return stored, len(mails) - len(stored)


def record_attempt(factory: sessionmaker[Session], mailbox: str, folder: str) -> None:
    with factory() as session:
        _state(session, mailbox, folder).last_attempt_at = utcnow()
        session.commit()


def record_success(
    factory: sessionmaker[Session], mailbox: str, folder: str, imported: int, tz: tzinfo
) -> None:
    now = utcnow()
    with factory() as session:
        state = _state(session, mailbox, folder)
        state.imported_day, state.imported_today = count_today(
            state.imported_day,
            state.imported_today or 0,
            now.astimezone(tz).date().isoformat(),
            imported,
        )
        state.imported_total = (state.imported_total or 0) + imported
        state.last_success_at = now
        state.last_error = None
        session.commit()


def record_error(factory: sessionmaker[Session], mailbox: str, folder: str, message: str) -> None:
    with factory() as session:
        state = _state(session, mailbox, folder)
        state.last_error, state.last_error_at = message[:2000], utcnow()
        session.commit()


def remember_oversize(session: Session, mailbox: str, folder: str, keys: Sequence[str]) -> None:
    """Add to the status list of oversize messages (in the caller's transaction)."""
    state = _state(session, mailbox, folder)
    known = list(state.oversize_reported or [])
    known.extend(k for k in keys if k not in known)
    state.oversize_reported = known[-OVERSIZE_LIST_LIMIT:]


@dataclass(frozen=True)
class MailboxStatus:
    """What the settings page shows per mailbox."""

    name: str
    folder: str
    enabled: bool
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    imported_today: int
    imported_total: int
    oversize_reported: list[str]

    @property
    def ok(self) -> bool:
        return self.last_error is None and self.last_success_at is not None

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "name": self.name,
            "folder": self.folder,
            "enabled": self.enabled,
            "ok": self.ok,
            "last_success_at": iso(self.last_success_at),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "imported_today": self.imported_today,
            "imported_total": self.imported_total,
            "oversize_reported": self.oversize_reported,
        }


def mailbox_status(session: Session, tz: tzinfo | None = None) -> list[MailboxStatus]:
    """Status of every configured mailbox (also disabled ones), in settings order."""
    from mailgate.dealer_settings import load_dealer_config
    from mailgate.imap.settings import load_mailboxes

    tz = tz or load_dealer_config(session).timezone
    today = utcnow().astimezone(tz).date().isoformat()
    states = {(s.mailbox, s.folder): s for s in session.scalars(select(ImapState))}
    result = []
    for mailbox in load_mailboxes(session, enabled_only=False):
        state = states.get((mailbox.name, mailbox.folder))
        result.append(
            MailboxStatus(
                name=mailbox.name,
                folder=mailbox.folder,
                enabled=mailbox.enabled,
                last_success_at=state.last_success_at if state else None,
                last_error=state.last_error if state else None,
                last_error_at=state.last_error_at if state else None,
                imported_today=(
                    state.imported_today if state and state.imported_day == today else 0
                ),
                imported_total=state.imported_total if state else 0,
                oversize_reported=list(state.oversize_reported or []) if state else [],
            )
        )
    return result
