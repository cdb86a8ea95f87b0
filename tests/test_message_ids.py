"""Issue 17 item 5: outgoing Message-IDs are 128 random bits at the dealer's domain — two
installations, or one restored from a backup, never hand out the same id twice."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings
from mailgate.escalation.scheduler import tick
from mailgate.models import OutboxMail

from .conftest import DEALER_TOML
from .conversation_helpers import ingest, rows, sent_mail
from .mails import inquiry
from .test_escalation import at, ingest_at, setup

MESSAGE_ID = re.compile(r"<[0-9a-f]{32}@autohaus\.example>")


def _installation(path: Path) -> sessionmaker[Session]:
    engine = db.create_db_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    factory = db.make_session_factory(engine)
    with db.session_scope(factory) as session:
        import_settings(session, DEALER_TOML)
    return factory


def _ids(factory: sessionmaker[Session]) -> dict[str, str]:
    with factory() as session:
        return dict(
            session.execute(select(OutboxMail.idempotency_key, OutboxMail.message_id)).all()
        )


def test_two_fresh_installations_never_share_a_message_id(
    dealer: sessionmaker[Session], tmp_path: Path
) -> None:
    other = _installation(tmp_path / "other.sqlite3")
    for factory in (dealer, other):
        for n in (1, 2, 3):
            ingest(factory, inquiry(n))
    mine, theirs = _ids(dealer), _ids(other)
    assert set(mine) == set(theirs) and len(mine) >= 3  # the same mails, keys and row ids …
    assert not set(mine.values()) & set(theirs.values())  # … and never the same Message-ID
    assert all(MESSAGE_ID.fullmatch(i) for i in [*mine.values(), *theirs.values()])
    [row] = rows(dealer, "notification")[:1]
    first, again = sent_mail(dealer, row.id), sent_mail(dealer, row.id)
    assert first["Message-ID"] == again["Message-ID"] == row.message_id  # a re-send is the same


def _backup(source: Path, target: Path) -> None:
    """SQLite's online backup (the live file alone may lack what sits in its WAL)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def test_a_restored_backup_hands_out_new_ids(tmp_path: Path) -> None:
    live = tmp_path / "live.sqlite3"
    factory = _installation(live)
    ingest(factory, inquiry(1))
    _backup(live, tmp_path / "backup.sqlite3")
    ingest(factory, inquiry(2))  # sent after the backup was taken
    _backup(tmp_path / "backup.sqlite3", tmp_path / "restored.sqlite3")
    restored = _installation(tmp_path / "restored.sqlite3")
    ingest(restored, inquiry(2))  # the same lead id, the same keys, after the restore
    before, after = _ids(factory), _ids(restored)
    again = [key for key in after if key.startswith("notification:2:")]
    assert again and all(before[key] != after[key] for key in again)


def test_reminders_thread_under_the_stored_notification_id(dealer: sessionmaker[Session]) -> None:
    setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-27 16:00"))
    tick(dealer, now=at("2026-11-30 09:00"))
    [notification] = rows(dealer, "notification")
    [reminder] = rows(dealer, "reminder")
    mail = sent_mail(dealer, reminder.id)
    assert notification.lead_id == reminder.lead_id == lead_id
    assert mail["In-Reply-To"] == notification.message_id
    assert mail["References"] == notification.message_id
    assert MESSAGE_ID.fullmatch(str(mail["Message-ID"]))
