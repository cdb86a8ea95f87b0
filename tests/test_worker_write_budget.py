"""The worker's write transactions end when their time budget is spent (issue 18, item 1).

Why: on SQLite a write transaction holds the one write lock, and a click in the
web UI waits behind it.  A chunk of ten mails used to be one transaction
however long it took (up to ~0.9 s measured in ``serve`` on a busy machine);
now it commits once :data:`mailgate.worker.WRITE_BUDGET_SECONDS` is spent and
the rest follows in the next transaction.  With a budget of zero every mail is
its own transaction: the results must be exactly those of one transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import worker
from mailgate.batch import BatchContext
from mailgate.models import Lead, LeadFollowup, OutboxMail, ProtocolEntry
from mailgate.worker import process_pending

from .mails import inquiry
from .test_worker_batch import SETTINGS, outcomes, store


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many mails each write transaction took; the budget set to zero."""
    sizes: list[int] = []
    real = worker._write

    def counting(*args: Any, **kwargs: Any) -> list[str]:
        statuses = real(*args, **kwargs)
        sizes.append(len(statuses))
        return statuses

    monkeypatch.setattr(worker, "_write", counting)
    monkeypatch.setattr(worker, "WRITE_BUDGET_SECONDS", 0.0)
    return sizes


def test_a_spent_budget_commits_and_the_next_mail_sees_what_was_written(
    dealer: sessionmaker[Session], written: list[int]
) -> None:
    first = store(dealer, inquiry(1, email="otto@kunden.example"))
    store(dealer, inquiry(1, email="otto@kunden.example"), relay="mx2")  # same mail again
    later = store(dealer, inquiry(2, email="otto@kunden.example", message="Noch eine Frage"))
    store(dealer, inquiry(3))
    report = process_pending(dealer, SETTINGS)
    assert written == [1, 1, 1, 1]  # one transaction per mail
    assert report.statuses == {"processed": 3, "discarded": 1}
    duplicate = outcomes(dealer)[1]
    with dealer() as session:
        leads = session.scalars(select(Lead).order_by(Lead.id)).all()
        assert [lead.inbound_id for lead in leads] == [first, first + 3]
        assert duplicate == ("discarded", f"duplicate of lead {leads[0].id}")
        followup = session.scalars(select(LeadFollowup)).one()
        assert (followup.lead_id, followup.inbound_id) == (leads[0].id, later)
        purposes = session.scalars(select(OutboxMail.purpose)).all()
    assert sorted(purposes) == ["followup", "notification", "notification"]


def test_the_mail_by_mail_fallback_keeps_the_budget_too(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, written: list[int]
) -> None:
    def broken_flush(self: BatchContext, session: Session, enqueue: object) -> None:
        raise RuntimeError("multi-row insert refused")

    monkeypatch.setattr(BatchContext, "flush", broken_flush)
    ids = [store(dealer, inquiry(n)) for n in range(1, 4)]
    report = process_pending(dealer, SETTINGS)
    assert report.statuses == {"processed": 3}
    assert [size for size in written if size] == [1, 1, 1]  # the batched tries raised
    with dealer() as session:
        leads = session.scalars(select(Lead).order_by(Lead.id)).all()
        assert [lead.inbound_id for lead in leads] == ids
        for lead in leads:  # each written once, by the per-mail path
            actions = session.scalars(
                select(ProtocolEntry.action)
                .where(ProtocolEntry.lead_id == lead.id)
                .order_by(ProtocolEntry.id)
            ).all()
            assert list(actions) == ["received", "assigned", "notified"]
        assert len(session.scalars(select(OutboxMail)).all()) == 3


def test_a_quiet_chunk_stays_one_transaction(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, written: list[int]
) -> None:
    """The budget only cuts when spent: a generous one writes the chunk at once, one fsync."""
    monkeypatch.setattr(worker, "WRITE_BUDGET_SECONDS", 3600.0)
    for n in range(1, 6):
        store(dealer, inquiry(n))
    assert process_pending(dealer, SETTINGS).statuses == {"processed": 5}
    assert written == [5]


def test_the_worker_reports_the_longest_write_lock_hold_of_each_pass(
    sqlite_dealer: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(1, 4):
        store(sqlite_dealer, inquiry(n))
    stop, wakeup = threading.Event(), threading.Event()
    with caplog.at_level(logging.INFO, logger="mailgate.worker"):
        thread = threading.Thread(
            target=worker.run_worker, args=(sqlite_dealer, SETTINGS, stop, wakeup)
        )
        thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            "processed 3 mails" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.05)
        stop.set()
        wakeup.set()
        thread.join(30)
    (line,) = [r.getMessage() for r in caplog.records if "processed 3 mails" in r.getMessage()]
    assert "longest SQLite write-lock hold" in line, line
