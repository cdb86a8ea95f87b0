"""The processing pipeline: stored mail -> lead -> outbox, failures parked, never lost."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mailgate import pipeline, poison
from mailgate.config import Settings, WorkerSettings
from mailgate.dealer_settings import load_dealer_config
from mailgate.ingest.store import store_raw
from mailgate.models import (
    Customer,
    InboundMail,
    InboundStatus,
    Lead,
    LeadFollowup,
    OutboxMail,
    ProtocolEntry,
    utcnow,
)
from mailgate.outbound.outbox import materialise
from mailgate.worker import (
    claim_batch,
    process_ids,
    process_pending,
    release_dead_local_claims,
    reprocess,
    worker_identity,
)

from .mails import auto_reply, bounce, inquiry, no_contact

SETTINGS = Settings()


def store(factory: sessionmaker[Session], raw: bytes, channel: str = "smtp") -> int:
    return store_raw(
        factory,
        raw,
        channel=channel,
        envelope_from="form@kunden.example",
        envelope_to=["leads@autohaus.example"],
    ).id


def inbound(factory: sessionmaker[Session], inbound_id: int) -> InboundMail:
    with factory() as session:
        row = session.get(InboundMail, inbound_id, options=[selectinload(InboundMail.raw_record)])
        assert row is not None
        return row


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_inquiry_becomes_assigned_lead_with_notification(dealer: sessionmaker[Session]) -> None:
    mail_id = store(dealer, inquiry(1, name="Herr Dr. Karl von Beispiel"))
    report = process_pending(dealer, SETTINGS)
    assert report.statuses == {"processed": 1}
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.PROCESSED and row.lead_id is not None
    with dealer() as session:
        lead = session.get(Lead, row.lead_id)
        assert lead is not None and lead.assignee is not None
        assert lead.assignee.email == "anna@autohaus.example"
        assert lead.status == "assigned"
        assert lead.customer is not None and lead.customer.last_name == "von Beispiel"
        assert lead.customer.title == "Dr." and lead.customer.salutation == "Herr"
        assert lead.vehicle["price"] == 38450.0
        assert lead.next_due_at is not None and lead.next_due_at > lead.received_at
        assert len(lead.reply_token) >= 22  # 16 random bytes, url-safe
        actions = [p.action for p in lead.protocol]
        assert actions == ["received", "assigned", "notified"]
        mails = session.scalars(select(OutboxMail)).all()
        config = load_dealer_config(session)
    assert [(m.purpose, m.recipients, m.lead_id) for m in mails] == [
        ("notification", ["anna@autohaus.example"], lead.id)
    ]
    # queued as template + context; the sender renders it right before sending
    assert mails[0].raw is None and mails[0].template == "notification"
    composed = materialise(config, mails[0])
    assert composed is not None and composed.message_id == mails[0].message_id
    assert b"Auto-Submitted: auto-generated" in composed.raw
    assert f"[Lead {lead.id}]" in composed.subject
    # Reply-To: the tracking address, with the token bound to the lead and its assignee
    from mailgate.escalation.authenticity import assignee_token

    assert lead.assignee_id is not None
    assert assignee_token(lead.reply_token, lead.assignee_id).encode() in composed.raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(bounce(1), "bounce"), (auto_reply(1), "auto-reply")],
)
def test_non_leads_are_discarded_with_a_reason(
    dealer: sessionmaker[Session], raw: bytes, reason: str
) -> None:
    mail_id = store(dealer, raw)
    process_pending(dealer, SETTINGS)
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.DISCARDED and reason in (row.status_reason or "")
    assert row.raw == raw
    assert count(dealer, Lead) == 0 and count(dealer, OutboxMail) == 0


def test_mail_without_lead_data_is_quarantined_and_reported(dealer: sessionmaker[Session]) -> None:
    raw = no_contact(1)
    mail_id = store(dealer, raw)
    process_pending(dealer, SETTINGS)
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.QUARANTINED
    assert "no lead could be made" in (row.status_reason or "")
    with dealer() as session:
        notice = session.scalars(select(OutboxMail)).one()
    assert notice.purpose == "unassigned" and notice.recipients == ["zentrale@autohaus.example"]
    assert b"original.eml" in notice.raw


def test_oversized_structure_is_quarantined_not_parsed(dealer: sessionmaker[Session]) -> None:
    raw = (
        b"Subject: deep\r\nMessage-ID: <deep@x.example>\r\n"
        + b"X-Pad: "
        + b"a" * 70000
        + b"\r\n\r\nbody\r\n"
    )
    mail_id = store(dealer, raw)
    process_pending(dealer, SETTINGS)
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.QUARANTINED and "header" in (row.status_reason or "")


def test_same_mail_twice_and_over_two_channels_makes_one_lead(
    dealer: sessionmaker[Session],
) -> None:
    raw = inquiry(2)
    via_imap = (
        b"Received: from mx.provider.example by imap.provider.example\r\n"
        b"Delivered-To: leads@autohaus.example\r\n" + raw
    )
    ids = [store(dealer, raw), store(dealer, raw), store(dealer, via_imap, channel="imap")]
    process_pending(dealer, SETTINGS)
    statuses = [inbound(dealer, i).status for i in ids]
    assert statuses == ["processed", "discarded", "discarded"]
    assert "duplicate of lead" in (inbound(dealer, ids[2]).status_reason or "")
    assert count(dealer, Lead) == 1 and count(dealer, OutboxMail) == 1


def test_same_customer_twice_reuses_the_customer(dealer: sessionmaker[Session]) -> None:
    store(dealer, inquiry(3, email="Wiederkehr@Kunden.example"))
    store(dealer, inquiry(4, email="wiederkehr@kunden.example"))
    process_pending(dealer, SETTINGS)
    # The second mail comes while the first lead is open: it is attached, not a new lead.
    assert count(dealer, Lead) == 1 and count(dealer, Customer) == 1
    assert count(dealer, LeadFollowup) == 1


def test_failing_stage_marks_failed_keeps_raw_and_reprocess_recovers(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = inquiry(5)
    mail_id = store(dealer, raw)

    def broken(job: pipeline.Job) -> None:
        raise KeyError("bug in distribution")

    stages = list(pipeline.DB_STAGES)
    stages[stages.index(pipeline.distribute)] = broken
    monkeypatch.setattr("mailgate.worker.DB_STAGES", tuple(stages))
    process_pending(dealer, SETTINGS)
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.FAILED
    assert "KeyError" in (row.status_reason or "") and "broken" in (row.traceback or "")
    assert row.raw == raw
    # the failed attempt left nothing half-done behind
    assert count(dealer, Lead) == 0 and count(dealer, ProtocolEntry) == 0
    assert count(dealer, OutboxMail) == 0

    monkeypatch.setattr("mailgate.worker.DB_STAGES", pipeline.DB_STAGES)  # "the fix"
    assert reprocess(dealer, failed=True) == 1
    process_pending(dealer, SETTINGS)
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.PROCESSED and row.traceback is None
    assert count(dealer, Lead) == 1


def test_reprocessing_a_processed_mail_creates_nothing_new(dealer: sessionmaker[Session]) -> None:
    mail_id = store(dealer, inquiry(6))
    process_pending(dealer, SETTINGS)
    lead_id = inbound(dealer, mail_id).lead_id
    reprocess(dealer, [mail_id])
    process_pending(dealer, SETTINGS)
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.PROCESSED and row.lead_id == lead_id
    assert count(dealer, Lead) == 1 and count(dealer, OutboxMail) == 1


def test_rows_of_a_dead_worker_are_picked_up(dealer: sessionmaker[Session]) -> None:
    mail_id = store(dealer, inquiry(7))
    import socket

    dead = f"{socket.gethostname()}:999999:deadbeef"  # no such pid
    with dealer() as session:
        session.execute(
            update(InboundMail).values(
                status=InboundStatus.PROCESSING,
                claimed_by=dead,
                attempts=1,
                lease_until=utcnow() + timedelta(hours=1),
            )
        )
        session.commit()
    assert claim_batch(dealer, worker_identity(), SETTINGS.worker, utcnow()) == []
    assert release_dead_local_claims(dealer) == 1
    process_pending(dealer, SETTINGS)
    assert inbound(dealer, mail_id).status == InboundStatus.PROCESSED


def suspect(factory: sessionmaker[Session], raw: bytes) -> int:
    """A mail whose worker died ``max_attempts`` times while it was processed alone."""
    mail_id = store(factory, raw)
    with factory() as session:
        session.execute(
            update(InboundMail).values(
                status=InboundStatus.PROCESSING,
                claimed_by="elsewhere:1:x",
                attempts=7,
                solo_attempts=SETTINGS.worker.max_attempts,
                lease_until=utcnow() - timedelta(seconds=1),
            )
        )
        session.commit()
    return mail_id


def test_a_mail_that_keeps_killing_workers_is_failed(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(job: pipeline.Job) -> None:  # what a mail crashing the parser does
        os._exit(70)

    # fork: the isolated attempt's process inherits the crashing stage
    monkeypatch.setattr(poison, "START_METHOD", "fork")
    monkeypatch.setattr("mailgate.worker.PREPARE_STAGES", (crash,))
    mail_id = suspect(dealer, inquiry(8))
    report = process_pending(dealer, SETTINGS)
    assert report.statuses == {"failed": 1}
    row = inbound(dealer, mail_id)
    limit = SETTINGS.worker.max_attempts
    assert row.status == InboundStatus.FAILED
    assert f"interrupted {limit} times" in (row.status_reason or "")
    assert "killed its process (exit code 70)" in (row.status_reason or "")


def test_an_innocent_mail_caught_by_outside_kills_is_not_failed(
    dealer: sessionmaker[Session],
) -> None:
    """Five outside kills while it was in flight alone: tried in isolation, it is processed."""
    mail_id = suspect(dealer, inquiry(9))
    report = process_pending(dealer, SETTINGS)
    assert report.statuses == {"processed": 1}
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.PROCESSED and row.lead_id is not None
    assert count(dealer, Lead) == 1


def test_concurrent_workers_process_each_mail_once(dealer: sessionmaker[Session]) -> None:
    for n in range(60):
        store(dealer, inquiry(100 + n))
    store(dealer, inquiry(100))  # a duplicate in the mix
    settings = replace(SETTINGS, worker=WorkerSettings(batch_size=7))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            process_pending(dealer, settings)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with dealer() as session:
        statuses = session.scalars(select(InboundMail.status)).all()
    assert sorted(set(statuses)) == ["discarded", "processed"]
    assert count(dealer, Lead) == 60 and count(dealer, OutboxMail) == 60


def test_mails_of_an_often_interrupted_batch_are_retried_alone_not_failed(
    dealer: sessionmaker[Session],
) -> None:
    ids = [store(dealer, inquiry(300 + n)) for n in range(3)]
    with dealer() as session:
        session.execute(
            update(InboundMail).values(
                status=InboundStatus.PROCESSING,
                claimed_by="elsewhere:1:x",
                attempts=5,  # killed five times while working on the whole batch
                lease_until=utcnow() - timedelta(seconds=1),
            )
        )
        session.commit()
    me = worker_identity()
    assert claim_batch(dealer, me, SETTINGS.worker, utcnow()) == [ids[0]]  # suspects one by one
    process_ids(dealer, [ids[0]], me)
    process_pending(dealer, SETTINGS)
    assert [inbound(dealer, i).status for i in ids] == ["processed"] * 3
    assert [inbound(dealer, i).solo_attempts for i in ids] == [1, 1, 1]


def test_worker_loop_survives_a_database_that_is_not_ready(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The worker starts before the schema exists (DB restored, not migrated yet) and recovers."""
    import threading as th

    from mailgate import db
    from mailgate.dealer_settings import import_settings
    from mailgate.worker import run_worker

    from .conftest import DEALER_TOML

    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'late.sqlite3'}")
    factory = db.make_session_factory(engine)
    settings = replace(SETTINGS, worker=WorkerSettings(poll_interval=0.1))
    stop, wakeup = th.Event(), th.Event()
    loop = th.Thread(target=run_worker, args=(factory, settings, stop, wakeup))
    loop.start()
    try:
        import time

        time.sleep(0.5)  # several failing passes: no tables yet
        assert loop.is_alive()
        db.upgrade(engine)
        with db.session_scope(factory) as session:
            import_settings(session, DEALER_TOML)
        mail_id = store(factory, inquiry(400))
        wakeup.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and inbound(factory, mail_id).status != "processed":
            time.sleep(0.1)
        assert inbound(factory, mail_id).status == InboundStatus.PROCESSED
    finally:
        stop.set()
        wakeup.set()
        loop.join(10)
        engine.dispose()
    assert not loop.is_alive()


def test_nul_bytes_in_a_mail_do_not_break_postgresql(dealer: sessionmaker[Session]) -> None:
    raw = inquiry(500).replace(b"Ist das Fahrzeug", b"Ist\x00 das\x01 Fahrzeug")
    mail_id = store(dealer, raw)
    process_pending(dealer, SETTINGS)
    row = inbound(dealer, mail_id)
    assert row.status == InboundStatus.PROCESSED and row.raw == raw  # raw kept as received
    with dealer() as session:
        message = session.scalar(select(Lead.message))
    assert message is not None and "Ist das Fahrzeug" in message and "\x00" not in message
