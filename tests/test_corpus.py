"""Public malformed-mail corpora through the full ingest path (read in place, never copied).

RELIABILITY.md M1 (fast tier): no unhandled exception, every message stored
byte-identical, each one a lead, discarded or quarantined with a reason.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, InboundRaw, InboundStatus
from mailgate.worker import process_pending

from .conftest import require_service

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def corpus_files() -> list[Path]:
    return sorted(
        path for path in CORPORA.glob("*/*") if path.is_file() and path.parent.name != "LICENSES"
    )


def test_every_corpus_mail_is_stored_and_settled(dealer: sessionmaker[Session]) -> None:
    files = corpus_files()
    if not files:
        require_service("the shared mail corpora", f"{CORPORA} is missing or empty")
    sent = {store_raw(dealer, path.read_bytes(), channel="smtp").id: path for path in files}
    process_pending(dealer, Settings())
    with dealer() as session:
        rows = session.execute(
            select(InboundMail.id, InboundMail.status, InboundMail.status_reason)
        ).all()
        raw = dict(session.execute(select(InboundRaw.inbound_id, InboundRaw.raw)).all())
    assert len(rows) == len(files)
    settled = {InboundStatus.PROCESSED, InboundStatus.DISCARDED, InboundStatus.QUARANTINED}
    for row in rows:
        name = sent[row.id].name
        assert raw[row.id] == sent[row.id].read_bytes(), name
        assert row.status in settled, (name, row.status, row.status_reason)
        if row.status != InboundStatus.PROCESSED:
            assert row.status_reason, name
