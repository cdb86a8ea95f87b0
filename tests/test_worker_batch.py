"""The worker's set-based transactions and parser processes give the per-mail results.

Batches of mails whose look-ups depend on each other (a duplicate, a second
mail of the same customer in the same transaction), a batch-level step that
fails (mail-by-mail fallback), and parsing in child processes (same outcomes
as in-process; a mail that kills its parser process fails alone).
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import parse_pool, worker
from mailgate.batch import BatchContext
from mailgate.config import Settings
from mailgate.ingest.store import store_raw
from mailgate.models import InboundMail, Lead, LeadFollowup, OutboxMail, ProtocolEntry
from mailgate.worker import process_pending

from .mails import LEAD_ADDRESS, auto_reply, bounce, inquiry, no_contact

SETTINGS = Settings()


@pytest.fixture(autouse=True)
def no_start_hold_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker loop started by an earlier test holds parser processes off for a while."""
    monkeypatch.setattr(parse_pool, "_not_before", 0.0)


def store(factory: sessionmaker[Session], raw: bytes, relay: str = "mx1") -> int:
    """Store as received; ``relay`` adds a transport header, as a second path would."""
    stamped = f"Received: from {relay}.autohaus.example\r\n".encode() + raw
    return store_raw(factory, stamped, channel="smtp", envelope_to=[LEAD_ADDRESS]).id


def outcomes(factory: sessionmaker[Session]) -> list[tuple[str, str | None]]:
    with factory() as session:
        rows = session.execute(
            select(InboundMail.status, InboundMail.status_reason).order_by(InboundMail.id)
        ).all()
    return [(status, reason) for status, reason in rows]


def test_mails_that_depend_on_each_other_in_one_transaction(
    dealer: sessionmaker[Session],
) -> None:
    first = store(dealer, inquiry(1, email="otto@kunden.example"))
    store(dealer, inquiry(1, email="otto@kunden.example"), relay="mx2")  # same mail again
    later = store(dealer, inquiry(2, email="otto@kunden.example", message="Noch eine Frage"))
    store(dealer, inquiry(3))
    report = process_pending(dealer, SETTINGS)
    assert report.statuses == {"processed": 3, "discarded": 1}
    duplicate = outcomes(dealer)[1]
    with dealer() as session:
        leads = session.scalars(select(Lead).order_by(Lead.id)).all()
        assert [lead.inbound_id for lead in leads] == [first, first + 3]
        assert duplicate == ("discarded", f"duplicate of lead {leads[0].id}")
        followup = session.scalars(select(LeadFollowup)).one()
        assert (followup.lead_id, followup.inbound_id) == (leads[0].id, later)
        actions = session.scalars(
            select(ProtocolEntry.action).where(ProtocolEntry.lead_id == leads[0].id)
        ).all()
        assert actions.count("follow-up") == 1 and actions[0] == "received"
        purposes = session.scalars(select(OutboxMail.purpose).order_by(OutboxMail.id)).all()
    assert sorted(purposes) == ["followup", "notification", "notification"]
    assert leads[0].customer_id != leads[1].customer_id


def test_failing_batch_step_falls_back_to_mail_by_mail(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_flush(self: BatchContext, session: Session, enqueue: object) -> None:
        raise RuntimeError("multi-row insert refused")

    monkeypatch.setattr(BatchContext, "flush", broken_flush)
    ids = [store(dealer, inquiry(n)) for n in range(1, 4)]
    report = process_pending(dealer, SETTINGS)
    assert report.statuses == {"processed": 3}
    with dealer() as session:
        leads = session.scalars(select(Lead).order_by(Lead.id)).all()
        assert [lead.inbound_id for lead in leads] == ids
        for lead in leads:  # written by the per-mail path, once
            actions = [p.action for p in lead.protocol]
            assert actions == ["received", "assigned", "notified"]
        assert len(session.scalars(select(OutboxMail)).all()) == 3


def batch_of_mails() -> list[bytes]:
    mails = [inquiry(n, padding=(n * 997) % 9000) for n in range(30)]
    mails[5] = bounce(5)
    mails[11] = auto_reply(11)
    mails[17] = no_contact(17)
    mails[23] = inquiry(40, email="kunde3@kunden.example")  # customer of mail 3 again
    mails[26] = mails[8]  # delivered twice
    return mails


def run_batch(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
    for raw in batch_of_mails():
        store(factory, raw)
    process_pending(factory, SETTINGS)
    with factory() as session:
        rows = session.execute(
            select(InboundMail.status, InboundMail.status_reason, InboundMail.parser).order_by(
                InboundMail.id
            )
        ).all()
        leads = session.execute(
            select(
                Lead.source, Lead.kind, Lead.subject, Lead.message, Lead.status, Lead.vehicle
            ).order_by(Lead.id)
        ).all()
    return [tuple(r) for r in rows] + [tuple(lead) for lead in leads]


def test_parser_processes_give_the_in_process_results(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, dealer: sessionmaker[Session]
) -> None:
    from mailgate import db
    from mailgate.dealer_settings import import_settings

    from .conftest import DEALER_TOML

    monkeypatch.setenv("MAILGATE_PARSE_PROCESSES", "0")
    in_process = run_batch(dealer)
    monkeypatch.setenv("MAILGATE_PARSE_PROCESSES", "2")
    engine = db.create_db_engine(f"sqlite:///{tmp_path}/pool.sqlite3")
    db.upgrade(engine)
    other = db.make_session_factory(engine)
    with db.session_scope(other) as session:
        import_settings(session, DEALER_TOML)
    pooled = run_batch(other)
    engine.dispose()
    assert parse_pool.get_pool() is not None  # the batch went through child processes
    assert pooled == in_process
    statuses = [row[0] for row in in_process[:30]]
    assert statuses.count("processed") == 26 and statuses.count("discarded") == 3


def double_or_die(items: list[int]) -> list[object]:
    """Runs in a parser process: item 13 kills it, as a mail crashing the parser would."""
    if 13 in items:
        os._exit(70)
    return [item * 2 for item in items]


def test_an_item_that_kills_its_process_is_found_and_the_rest_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILGATE_PARSE_PROCESSES", "2")
    results = [
        result
        for chunk in parse_pool.run_chunks(
            list(range(35)), double_or_die, lambda item: item * 2, lambda item: f"died: {item}"
        )
        for result in chunk
    ]
    assert results == [n * 2 if n != 13 else "died: 13" for n in range(35)]
    # and the pool works again afterwards
    assert next(iter(parse_pool.run_chunks(list(range(20)), double_or_die, str, str)))[0] == 0


def test_no_parser_processes_right_after_a_service_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restart must accept mail within seconds: a backlog then is parsed in-process."""
    monkeypatch.setenv("MAILGATE_PARSE_PROCESSES", "2")
    parse_pool.hold_off(60)
    try:
        assert parse_pool.get_pool() is None
        chunks = list(parse_pool.run_chunks(list(range(25)), double_or_die, str, str))
        assert [item for chunk in chunks for item in chunk] == [str(n) for n in range(25)]
    finally:
        parse_pool.hold_off(0)
    assert parse_pool.get_pool() is not None


def test_batches_claimed_ahead_give_the_in_process_results(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, dealer: sessionmaker[Session]
) -> None:
    """Several batches through the parser processes, each claimed while the last is written."""
    from dataclasses import replace

    from mailgate import db
    from mailgate.config import WorkerSettings
    from mailgate.dealer_settings import import_settings

    from .conftest import DEALER_TOML

    settings = replace(SETTINGS, worker=WorkerSettings(batch_size=parse_pool.MIN_MAILS))
    mails = batch_of_mails() + [inquiry(n, email="kunde3@kunden.example") for n in range(50, 62)]

    def run(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
        for raw in mails:
            store(factory, raw)
        report = process_pending(factory, settings)
        assert report.claimed == len(mails)
        with factory() as session:
            rows = session.execute(
                select(
                    InboundMail.status, InboundMail.status_reason, InboundMail.claimed_by
                ).order_by(InboundMail.id)
            ).all()
            leads = session.execute(select(Lead.inbound_id, Lead.source).order_by(Lead.id)).all()
        return [tuple(r) for r in rows] + [tuple(lead) for lead in leads]

    monkeypatch.setenv("MAILGATE_PARSE_PROCESSES", "0")
    in_process = run(dealer)
    monkeypatch.setenv("MAILGATE_PARSE_PROCESSES", "1")
    claims: list[bool] = []
    real_claim = worker.claim_batch

    def recording_claim(*args: object, **kwargs: object) -> list[int]:
        claims.append(bool(kwargs.get("ahead")))
        return real_claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(worker, "claim_batch", recording_claim)
    engine = db.create_db_engine(f"sqlite:///{tmp_path}/ahead.sqlite3")
    db.upgrade(engine)
    other = db.make_session_factory(engine)
    with db.session_scope(other) as session:
        import_settings(session, DEALER_TOML)
    pooled = run(other)
    engine.dispose()
    assert pooled == in_process
    assert claims.count(True) >= 2  # the later batches were claimed ahead
    assert all(row[2] is None for row in pooled[: len(mails)])  # no claim left behind


def test_mails_claimed_ahead_are_given_back_when_writing_fails(
    monkeypatch: pytest.MonkeyPatch, dealer: sessionmaker[Session]
) -> None:
    from dataclasses import replace

    from mailgate.config import WorkerSettings

    monkeypatch.setenv("MAILGATE_PARSE_PROCESSES", "1")
    settings = replace(SETTINGS, worker=WorkerSettings(batch_size=parse_pool.MIN_MAILS))
    ids = [store(dealer, inquiry(n)) for n in range(2 * parse_pool.MIN_MAILS)]

    def failing_write(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("database gone")

    monkeypatch.setattr(worker, "_write_chunk", failing_write)
    with pytest.raises(RuntimeError, match="database gone"):
        process_pending(dealer, settings)
    with dealer() as session:
        rows = dict(session.execute(select(InboundMail.id, InboundMail.status)).all())
    first, ahead = ids[: parse_pool.MIN_MAILS], ids[parse_pool.MIN_MAILS :]
    assert {rows[i] for i in first} == {"processing"}  # its lease brings them back
    assert {rows[i] for i in ahead} == {"received"}  # never started: back at once


def test_an_interrupted_mail_is_not_claimed_ahead(dealer: sessionmaker[Session]) -> None:
    """Claimed ahead, a death before its turn would count against it as a solo attempt."""
    from datetime import timedelta

    from sqlalchemy import update

    from mailgate.models import utcnow

    interrupted, fresh = store(dealer, inquiry(1)), store(dealer, inquiry(2))
    with dealer() as session:
        session.execute(
            update(InboundMail)
            .where(InboundMail.id == interrupted)
            .values(status="processing", claimed_by="gone:1:x", lease_until=utcnow() - timedelta(1))
        )
        session.commit()
    me = worker.worker_identity()
    assert worker.claim_batch(dealer, me, SETTINGS.worker, utcnow(), ahead=True) == []
    assert worker.claim_batch(dealer, me, SETTINGS.worker, utcnow()) == [interrupted]
    assert worker.claim_batch(dealer, me, SETTINGS.worker, utcnow(), ahead=True) == [fresh]
    with dealer() as session:
        solo = session.scalar(
            select(InboundMail.solo_attempts).where(InboundMail.id == interrupted)
        )
    assert solo == 1


def test_a_pool_broken_while_idle_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parser process that died between batches must not fail every later batch."""
    monkeypatch.setenv("MAILGATE_PARSE_PROCESSES", "1")
    pool = parse_pool.get_pool()
    assert pool is not None
    assert pool.submit(double_or_die, [13]).exception(timeout=60) is not None  # broken now
    chunks = list(parse_pool.run_chunks(list(range(20, 40)), double_or_die, str, str))
    assert [item for chunk in chunks for item in chunk] == [n * 2 for n in range(20, 40)]


def test_copies_with_another_message_id_in_one_transaction_are_found_without_a_query_each(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The content fingerprints of a batch are read once (issue 18 #2), and what the batch
    writes counts for the mails after it: a copy of an earlier lead, of a lead of the same
    batch, and of a follow-up of the same batch are each discarded as their twin."""
    from mailgate import pipeline

    earlier = store(dealer, inquiry(1, email="eva@kunden.example"))
    process_pending(dealer, SETTINGS)

    def per_mail_query(*_args: object) -> None:
        raise AssertionError("the batched path read a twin with a query of its own")

    monkeypatch.setattr(pipeline, "find_twin", per_mail_query)
    store(dealer, inquiry(1, email="eva@kunden.example", message_id="<copy-1@x>"))
    store(dealer, inquiry(2, email="max@kunden.example"))
    store(dealer, inquiry(2, email="max@kunden.example", message_id="<copy-2@x>"))
    ask = "Gibt es den auch in Blau?"
    store(dealer, inquiry(2, email="max@kunden.example", message=ask, message_id="<more@x>"))
    store(dealer, inquiry(2, email="max@kunden.example", message=ask, message_id="<more-2@x>"))
    report = process_pending(dealer, SETTINGS)
    assert report.statuses == {"processed": 2, "discarded": 3}, outcomes(dealer)
    with dealer() as session:
        first_lead = session.scalar(select(InboundMail.lead_id).where(InboundMail.id == earlier))
        leads = session.scalars(select(Lead.id).order_by(Lead.id)).all()
        followups = session.scalars(select(LeadFollowup.lead_id)).all()
    assert len(leads) == 2 and followups == [leads[1]]
    reasons = [reason or "" for _, reason in outcomes(dealer)[1:]]
    assert reasons[0].startswith(f"duplicate of lead {first_lead}: same content")
    assert reasons[2].startswith(f"duplicate of lead {leads[1]}: same content")
    assert reasons[4].startswith(f"duplicate of a mail attached to lead {leads[1]}")
