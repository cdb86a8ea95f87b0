"""The worker: claims stored mails and runs the pipeline over them.

Claims are a compare-and-set on ``inbound_mail.status`` (``received`` ->
``processing``, with a lease), so several workers, threads or processes can run
against one database.  A worker that dies leaves its rows ``processing``; they
are claimed again when the lease expires, or at once when a restarted worker on
the same host sees that the claiming process is gone.  A mail that keeps killing
workers is tried alone in a process of its own after ``max_attempts`` solo
claims that ended in a dead worker, and failed only if that process dies too
(:mod:`mailgate.poison`), so outside kills alone never fail a mail.

The pure stages (classify, parse) run before the write transaction, so SQLite's
single write lock is held only for the short database stages and SMTP intake
is not starved.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mailgate import db, logs, parse_pool, poison, wakeup
from mailgate.batch import BatchContext, Savepoint, record_outcomes
from mailgate.config import Settings, WorkerSettings
from mailgate.dealer_settings import DealerConfig, load_dealer_config
from mailgate.distribution.service import USERS_KEY, load_users
from mailgate.intake_pressure import PRESSURE
from mailgate.models import InboundMail, InboundStatus, Lead, utcnow
from mailgate.outbound.outbox import enqueue_deferred
from mailgate.pipeline import (
    DB_STAGES,
    PREPARE_STAGES,
    AlreadyProcessed,
    Discard,
    Job,
    Quarantine,
    Replied,
    dedupe_key,
    load_job,
    notify_unassigned,
)

log = logging.getLogger("mailgate.worker")
# How long one write transaction may run before it commits and the rest of the
# chunk follows in the next one.  On SQLite the transaction holds the single
# write lock, so this bounds how long a click in the web UI (and SMTP intake)
# waits behind the worker.  A quiet machine writes a whole chunk of ten mails
# well within it (one fsync per chunk, as before); a busy one, where the
# worker's thread waits for the CPU or the GIL mid-transaction, commits sooner.
WRITE_BUDGET_SECONDS = 0.05


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Outcome:
    status: str
    reason: str | None = None
    trace: str | None = None
    lead_id: int | None = None
    parser: str | None = None
    notify_unassigned: bool = False


@dataclass
class BatchReport:
    claimed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def add(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def release_dead_local_claims(factory: sessionmaker[Session]) -> int:
    """Expire leases held by processes on this host that no longer exist."""
    host = socket.gethostname()
    released = 0
    with factory() as session:
        rows = session.execute(
            select(InboundMail.id, InboundMail.claimed_by).where(
                InboundMail.status == InboundStatus.PROCESSING,
                InboundMail.claimed_by.like(f"{host}:%"),
            )
        ).all()
        for row_id, claimed_by in rows:
            pid = int(claimed_by.split(":")[1])
            if pid != os.getpid() and not _process_alive(pid):
                session.execute(
                    update(InboundMail)
                    .where(InboundMail.id == row_id, InboundMail.claimed_by == claimed_by)
                    .values(lease_until=utcnow() - timedelta(seconds=1))
                )
                released += 1
        session.commit()
    return released


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _interrupted(now: datetime) -> Any:
    """Rows whose worker died or whose lease ran out mid-processing."""
    return (InboundMail.status == InboundStatus.PROCESSING) & (InboundMail.lease_until < now)


def _claimable(now: datetime) -> Any:
    return or_(InboundMail.status == InboundStatus.RECEIVED, _interrupted(now))


def _claim(
    session: Session,
    ids: Sequence[int],
    me: str,
    config: WorkerSettings,
    now: datetime,
    *,
    solo: bool = False,
) -> list[int]:
    values: dict[str, Any] = {
        "status": InboundStatus.PROCESSING,
        "claimed_by": me,
        "lease_until": now + timedelta(seconds=config.lease_seconds),
        "attempts": InboundMail.attempts + 1,
    }
    if solo:
        values["solo_attempts"] = InboundMail.solo_attempts + 1
    claimed = session.scalars(
        update(InboundMail)
        .where(InboundMail.id.in_(list(ids)), _claimable(now))
        .values(**values)
        .returning(InboundMail.id)
    ).all()
    return sorted(claimed)


def claim_batch(
    factory: sessionmaker[Session],
    me: str,
    config: WorkerSettings,
    now: datetime,
    *,
    ahead: bool = False,
) -> list[int]:
    """Claim work by compare-and-set (SKIP LOCKED on PostgreSQL).

    Interrupted mails come back one at a time: when a worker dies in the middle
    of a batch, nobody knows which mail (if any) killed it, so each suspect is
    retried alone and only solo interruptions count towards giving up.
    Otherwise up to ``batch_size`` fresh mails are claimed together.
    ``ahead`` (claiming while another batch is still written): nothing if an
    interrupted mail is waiting, so it is claimed only when it is processed at
    once, alone, and a death in between is not counted against it.
    """
    postgres = factory.kw["bind"].dialect.name == "postgresql"
    with factory() as session:
        for condition, limit, solo in (
            (_interrupted(now), 1, True),
            (InboundMail.status == InboundStatus.RECEIVED, config.batch_size, False),
        ):
            candidates = select(InboundMail.id).where(condition).order_by(InboundMail.id)
            candidates = candidates.limit(limit)
            if postgres:
                candidates = candidates.with_for_update(skip_locked=True)
            ids = list(session.scalars(candidates))
            if ids and solo and ahead:
                break
            if ids:
                claimed = _claim(session, ids, me, config, now, solo=solo)
                session.commit()
                return claimed
        session.commit()
    return []


def claim_ids(
    factory: sessionmaker[Session],
    ids: Sequence[int],
    me: str,
    config: WorkerSettings,
    now: datetime | None = None,
) -> list[int]:
    """Claim particular mails, e.g. the one ``mailgate ingest`` just stored."""
    with factory() as session:
        claimed = _claim(session, ids, me, config, now or utcnow())
        session.commit()
    return claimed


@dataclass
class StartedBatch:
    """A claimed batch whose rows are loaded and whose parsing has begun (if pooled)."""

    ids: list[int]
    now: datetime
    dealer: DealerConfig
    users: Any
    raws: dict[int, bytes]
    results: Iterator[list[object]]
    pooled: bool  # parsed in parser processes (else in-process, lazily, when written)


def start_batch(
    factory: sessionmaker[Session], ids: Sequence[int], now: datetime | None = None
) -> StartedBatch:
    """Load claimed mails and hand their pure stages to the parser processes."""
    now = now or utcnow()
    # Only reads (raw bytes included): on SQLite not under the write lock that
    # intake and the web UI wait for.
    with db.reader_factory(factory)() as session:
        dealer = load_dealer_config(session)
        users = load_users(session)  # shared by the batch's transactions: one read
        inbound_rows = list(
            session.scalars(
                select(InboundMail)
                .options(selectinload(InboundMail.raw_record))
                .where(InboundMail.id.in_(ids))
                .order_by(InboundMail.id)
            )
        )
        session.commit()
    jobs = [load_job(row, dealer, now) for row in inbound_rows]
    wire = dataclasses.replace(dealer)  # no cached calendar etc. to pickle
    sent = [dataclasses.replace(job, dealer=wire, session=None) for job in jobs]
    pooled = parse_pool.uses_pool(len(sent))
    results = parse_pool.run_chunks(sent, prepare_chunk, _prepare_one, _killed_parser)
    raws = {job.inbound_id: job.raw for job in jobs}
    return StartedBatch(list(ids), now, dealer, users, raws, results, pooled)


def finish_batch(factory: sessionmaker[Session], batch: StartedBatch, me: str) -> BatchReport:
    """Write a started batch chunk by chunk, each chunk in one transaction."""
    report = BatchReport(claimed=len(batch.ids))
    # The next chunk is parsed (in parser processes) while this one is written.
    for results in _after_intake(batch.results):
        chunk = []
        for job, early in results:  # type: ignore[misc]
            job.dealer, job.raw = batch.dealer, batch.raws[job.inbound_id]
            chunk.append((job, early))
        for status in _write_chunk(factory, chunk, me, batch.now, batch.users, batch.dealer):
            report.add(status)
    return report


def process_ids(
    factory: sessionmaker[Session], ids: Sequence[int], me: str, now: datetime | None = None
) -> BatchReport:
    """Run the pipeline over claimed mails and record each outcome."""
    return finish_batch(factory, start_batch(factory, ids, now), me)


def _after_intake(chunks: Iterator[list[object]]) -> Iterator[list[object]]:
    """Each chunk only once SMTP intake and the web UI in this process are not busy.

    Asked before the chunk is taken, so an in-process parse waits too.
    """
    while True:
        PRESSURE.step_aside()
        try:
            yield next(chunks)
        except StopIteration:
            return


def prepare_chunk(jobs: list[Job]) -> list[tuple[Job, Outcome | None]]:
    """In a parser process: the pure stages of some jobs, sent back light."""
    results = []
    for job in jobs:
        job, early = _prepare_one(job)
        if job.view is not None:
            job.view = parse_pool.slim_view(job.view)
        job.raw = b""  # the parent has the bytes
        results.append((job, early))
    return results


def _prepare_one(job: Job) -> tuple[Job, Outcome | None]:
    with logs.inbound_context(job.inbound_id):  # log lines about this mail carry its id
        early = _run_prepare(job)
    if early is None:
        job.dedupe_key = dedupe_key(job.raw, job.message_id, job.view)
    return job, early


def _killed_parser(job: Job) -> tuple[Job, Outcome]:
    reason = "parsing this mail killed the parser process; left for inspection"
    return job, Outcome(InboundStatus.FAILED, reason)


def _write_chunk(
    factory: sessionmaker[Session],
    chunk: Sequence[tuple[Job, Outcome | None]],
    me: str,
    now: datetime,
    users: Any,
    dealer: DealerConfig,
) -> list[str]:
    """Write a chunk in as few transactions as :data:`WRITE_BUDGET_SECONDS` allows."""
    statuses: list[str] = []
    rest = list(chunk)
    while rest:
        if statuses:
            PRESSURE.step_aside()  # between two transactions: intake and clicks first
        written = _write_part(factory, rest, me, now, users, dealer)
        statuses.extend(written)
        rest = rest[len(written) :]
    return statuses


def _write_part(
    factory: sessionmaker[Session],
    chunk: Sequence[tuple[Job, Outcome | None]],
    me: str,
    now: datetime,
    users: Any,
    dealer: DealerConfig,
) -> list[str]:
    """One transaction over the first mails of ``chunk`` (at least one, within the budget).

    Set-based first, mail by mail if a batch step fails: a failing batch-level
    step (prefetch, the multi-row INSERTs, the outcomes) cannot say which mail
    caused it; run again without the batch context, each mail writes its own
    rows in its savepoint and a bad one fails alone.  Returns the statuses of
    the mails written; the caller writes the rest in the next transaction.
    """
    try:
        with factory() as session:
            session.info[USERS_KEY] = users
            statuses = _write(session, chunk, me, now, dealer, batched=True)
            session.commit()
            return statuses
    except Exception:  # noqa: BLE001 - retried mail by mail below
        log.warning(
            "batch write of %d mails failed; writing them one by one", len(chunk), exc_info=True
        )
    for job, _ in chunk:
        job.reset_db_state()
    with factory() as session:
        session.info[USERS_KEY] = users
        statuses = _write(session, chunk, me, now, dealer, batched=False)
        session.commit()
        return statuses


def _write(
    session: Session,
    chunk: Sequence[tuple[Job, Outcome | None]],
    me: str,
    now: datetime,
    dealer: DealerConfig,
    *,
    batched: bool,
) -> list[str]:
    """The database stages of the first mails of ``chunk``, until the write budget is spent."""
    started = time.perf_counter()
    batch = _prefetch(session, chunk) if batched else None
    outcomes = []
    for job, early in chunk:
        job.batch = batch
        outcomes.append((job.inbound_id, _run_db_stages(session, job, early)))
        if time.perf_counter() - started >= WRITE_BUDGET_SECONDS:
            break  # the rest in the next transaction: others get the write lock between
    if batch is not None:
        batch.flush(session, lambda db, mails: enqueue_deferred(db, dealer, mails))
    return record_outcomes(session, outcomes, me, now)


def _prefetch(session: Session, chunk: Sequence[tuple[Job, Outcome | None]]) -> BatchContext:
    """The batch's look-ups in one query per kind (see :mod:`mailgate.batch`)."""
    leads = [job for job, early in chunk if early is None and job.parsed is not None]
    users, _ = session.info[USERS_KEY]
    return BatchContext.prefetch(
        session,
        users,
        [job.dedupe_key for job in leads if job.dedupe_key],
        [job.customer_keys for job in leads if job.customer_keys],
        [job.fingerprint for job in leads if job.fingerprint],
    )


def _run_prepare(job: Job) -> Outcome | None:
    """Pure stages; returns a final outcome, or None to continue with the DB stages."""
    try:
        for stage in PREPARE_STAGES:
            stage(job)
    except Discard as exc:
        return Outcome(InboundStatus.DISCARDED, exc.reason)
    except Quarantine as exc:
        return Outcome(
            InboundStatus.QUARANTINED, exc.reason, notify_unassigned=exc.notify_unassigned
        )
    except Exception as exc:  # noqa: BLE001 - any bug: the mail is kept and marked failed
        return Outcome(InboundStatus.FAILED, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return None


def _run_db_stages(session: Session, job: Job, early: Outcome | None) -> Outcome:
    """The database stages of one mail in its own savepoint (and batch-context scope)."""
    job.session = session
    savepoint: Any = Savepoint(session) if job.batch is not None else session.begin_nested()

    def release() -> None:
        savepoint.commit()
        if job.batch is not None:
            job.batch.commit_mail()

    def undo() -> None:
        savepoint.rollback()
        if job.batch is not None:
            job.batch.discard_mail()

    logged = logs.set_inbound_id(job.inbound_id)  # log lines about this mail carry its id
    try:
        if early is not None:
            if early.notify_unassigned:
                notify_unassigned(job, early.reason or "")
            release()
            return early
        for stage in DB_STAGES:
            stage(job)
        release()
        parser = job.parsed.parser if job.parsed else None
        return Outcome(InboundStatus.PROCESSED, None, lead_id=job.lead_id, parser=parser)
    except Discard as exc:
        undo()
        return Outcome(InboundStatus.DISCARDED, exc.reason)
    except AlreadyProcessed as exc:
        undo()
        return Outcome(InboundStatus.PROCESSED, str(exc), lead_id=exc.lead_id)
    except Replied as exc:
        release()  # the reply's protocol, response time and relay stay
        return Outcome(InboundStatus.PROCESSED, exc.detail, lead_id=exc.lead_id)
    except Quarantine as exc:
        undo()
        if exc.notify_unassigned:
            notify_unassigned(job, exc.reason)
        return Outcome(InboundStatus.QUARANTINED, exc.reason)
    except IntegrityError:
        undo()
        twin = session.scalar(select(Lead.id).where(Lead.dedupe_key == job.dedupe_key))
        if twin is not None:
            return Outcome(InboundStatus.DISCARDED, f"duplicate of lead {twin}")
        return Outcome(InboundStatus.FAILED, "integrity error", traceback.format_exc())
    except Exception as exc:  # noqa: BLE001
        undo()
        return Outcome(InboundStatus.FAILED, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    finally:
        job.session = None
        logs.reset_inbound_id(logged)


def process_pending(
    factory: sessionmaker[Session], settings: Settings, me: str | None = None
) -> BatchReport:
    """Process until nothing is claimable (``mailgate worker --once``).

    Double-buffered: while a batch parsed in the parser processes is written,
    the next one is already claimed and being parsed, so the parser processes
    do not wait for the last chunk's write and the writer does not wait for
    the next batch's first chunk.  A single mail claimed ahead is not started
    early (it may be a suspect for :mod:`mailgate.poison`): it waits for its turn.
    """
    me = me or worker_identity()
    total = BatchReport()
    release_dead_local_claims(factory)
    pending: list[int] = []  # claimed, no database stage run yet (ahead's, or one queued)
    ahead: StartedBatch | None = None
    try:
        while True:
            if ahead is None:
                if not pending:
                    PRESSURE.step_aside()  # intake and clicks first: claim once they let up
                pending = pending or claim_batch(factory, me, settings.worker, utcnow())
                if not pending:
                    return total
                if len(pending) == 1 and poison.is_suspect(factory, pending[0], settings.worker):
                    suspect, pending = pending[0], []
                    total.claimed += 1
                    total.add(poison.try_in_isolation(factory, suspect, me, settings.worker))
                    continue
                ahead = start_batch(factory, pending)
            current, ahead, pending = ahead, None, []
            if current.pooled:
                pending = claim_batch(factory, me, settings.worker, utcnow(), ahead=True)
                if len(pending) > 1:
                    ahead = start_batch(factory, pending)
            report = finish_batch(factory, current, me)
            total.claimed += report.claimed
            for status, count in report.statuses.items():
                total.statuses[status] = total.statuses.get(status, 0) + count
    except BaseException:
        # Mails claimed but not yet written have not reached a database stage:
        # give them back at once instead of leaving them to the lease (and to
        # one-by-one retries as interrupted mails).
        unclaim(factory, pending, me)
        raise


def unclaim(factory: sessionmaker[Session], ids: Sequence[int], me: str) -> None:
    """Put mails this worker claimed but never started back to ``received`` (best effort)."""
    if not ids:
        return
    try:
        with factory() as session:
            session.execute(
                update(InboundMail)
                .where(
                    InboundMail.id.in_(list(ids)),
                    InboundMail.claimed_by == me,
                    InboundMail.status == InboundStatus.PROCESSING,
                )
                .values(status=InboundStatus.RECEIVED, claimed_by=None, lease_until=None)
            )
            session.commit()
    except Exception:  # noqa: BLE001 - the lease still returns them later
        log.warning("could not give back %d claimed mails", len(ids), exc_info=True)


def run_worker(
    factory: sessionmaker[Session],
    settings: Settings,
    stop: threading.Event,
    wakeup: threading.Event | None = None,
) -> None:
    """Loop until ``stop``: woken when mail is stored, polling for stranded rows.

    Woken by this process's intake (the ``INBOUND`` channel, or ``wakeup`` if
    given), by other processes' intake (PostgreSQL NOTIFY, or on SQLite a short
    poll for received mail), and every ``poll_interval`` anyway.
    """
    me = worker_identity()
    wait = _waiter(factory, stop, wakeup)
    warm_up()
    log.info("worker %s started", me)
    while not stop.is_set():
        try:
            report = process_pending(factory, settings, me)
            if report.claimed:
                locks = db.WRITE_LOCKS.take()  # this process, every thread, since the last pass
                if locks.count:
                    log.info(
                        "processed %d mails: %s; longest SQLite write-lock hold %.0f ms (%s)",
                        report.claimed,
                        report.statuses,
                        locks.longest_ms,
                        locks.longest_by,
                    )
                else:
                    log.info("processed %d mails: %s", report.claimed, report.statuses)
        except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
            log.exception("worker pass failed; retrying")
            stop.wait(settings.worker.poll_interval)
            continue
        wait(settings.worker.poll_interval)
    log.info("worker %s stopped", me)


def _waiter(
    factory: sessionmaker[Session], stop: threading.Event, event: threading.Event | None
) -> Any:
    """``wait(timeout)`` for the worker loop (see :mod:`mailgate.wakeup`)."""
    if event is not None:  # a caller's own wake-up event (tests, embedding)

        def wait_event(timeout: float) -> bool:
            fired = event.wait(timeout)
            event.clear()
            return fired

        return wait_event
    url = factory.kw["bind"].url.render_as_string(hide_password=False)
    return wakeup.waiter(url, wakeup.INBOUND, stop, _received_check(url))


def _received_check(url: str) -> Any:
    """On SQLite: is any mail waiting?  One indexed read on a reader connection (no write lock)."""
    if not url.startswith("sqlite") or ":memory:" in url:
        return None
    reader = db.create_db_engine(url, pool_size=1, reader=True)
    query = select(InboundMail.id).where(InboundMail.status == InboundStatus.RECEIVED).limit(1)

    def has_work() -> bool:
        with reader.connect() as conn:
            return conn.execute(query).first() is not None

    return has_work


WARM_UP_MAIL = (
    b"From: Warm Up <warm.up@kunden.example>\r\nTo: leads@localhost\r\n"
    b"Subject: warm-up\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Name: Warm Up\r\nTelefon: 0171 2345678\r\n"
)


@functools.cache
def warm_up() -> None:
    """Import every parser and compile the notification template before claiming anything.

    Why: the first mail after a start used to pay for lazy imports and template
    compilation (a second or more on a loaded machine).  An interrupted mail is
    claimed alone right after a restart; if the service is killed again during
    that slow first run, the mail's solo attempt counts toward "poison" although
    the mail is innocent.  Warming up first keeps that window to the mail's own
    processing time.
    """
    from mailgate.outbound.compose import render_mail
    from mailgate.outbound.samples import sample_context
    from mailgate.parsers import parse_raw

    parse_pool.hold_off()

    try:
        parse_raw(WARM_UP_MAIL)
        render_mail("notification", "de", sample_context("notification") or {})
    except Exception:  # noqa: BLE001 - a warm-up failure must not stop the worker
        log.exception("worker warm-up failed; continuing")


def reprocess(factory: sessionmaker[Session], ids: Sequence[int] = (), failed: bool = False) -> int:
    """Put mails back to ``received`` so the worker runs them again (after a fix)."""
    with factory() as session:
        query = update(InboundMail).values(
            status=InboundStatus.RECEIVED,
            status_reason=None,
            traceback=None,
            attempts=0,
            claimed_by=None,
            lease_until=None,
        )
        if failed:
            query = query.where(InboundMail.status == InboundStatus.FAILED)
        else:
            query = query.where(
                InboundMail.id.in_(list(ids)), InboundMail.status != InboundStatus.PROCESSING
            )
        count = session.execute(query).rowcount
        session.commit()
    return count
