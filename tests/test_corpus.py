"""Public malformed-mail corpora through the full ingest path (read in place, never copied).

RELIABILITY.md M1: every file of ``../shared/corpora/`` (mikel/mail, SpamScope,
stalwart, CPython's test_email data, noxxi/mime-is-broken; 830 files, all of
them in the fast tier) is stored and run through the worker: no unhandled
exception (no ``failed`` mail), every message stored byte-identical, each one
a lead or discarded/quarantined with a reason.  The row's hamlet target (valid
mails, >= 99.5 % become leads) is checked only if a ``hamlet`` folder exists
there; none does yet, and the test says so.
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
HAMLET = "hamlet"


def corpus_files() -> list[Path]:
    return sorted(
        path for path in CORPORA.glob("*/*") if path.is_file() and path.parent.name != "LICENSES"
    )


def test_m1_every_corpus_mail_is_stored_and_settled(dealer: sessionmaker[Session]) -> None:
    """M1: 0 unhandled exceptions, 100 % stored byte-identical, each a lead or
    discarded/quarantined with a reason (hamlet >= 99.5 % leads, if present)."""
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
    total = len(rows)
    without_exception = sum(row.status != InboundStatus.FAILED for row in rows)
    identical = sum(raw[row.id] == sent[row.id].read_bytes() for row in rows)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[str(row.status)] = statuses.get(str(row.status), 0) + 1
    print(
        f"FIGURE M1 corpus files processed without exception: {without_exception}/{total} "
        f"({100 * without_exception / total:.1f}%) {statuses}"
    )
    print(
        f"FIGURE M1 corpus files stored byte-identical: {identical}/{total} "
        f"({100 * identical / total:.1f}%)"
    )
    for row in rows:
        name = sent[row.id].name
        assert raw[row.id] == sent[row.id].read_bytes(), name
        assert row.status in settled, (name, row.status, row.status_reason)
        if row.status != InboundStatus.PROCESSED:
            assert row.status_reason, name
    hamlet = [row for row in rows if sent[row.id].parent.name == HAMLET]
    if not hamlet:
        print(
            f"FIGURE M1 hamlet: no {HAMLET}/ corpus in {CORPORA}; "
            "the >= 99.5 % lead target is not measured"
        )
        return
    leads = sum(row.status == InboundStatus.PROCESSED for row in hamlet)
    print(f"FIGURE M1 hamlet valid mails that became leads: {leads}/{len(hamlet)}")
    assert leads >= 0.995 * len(hamlet)
