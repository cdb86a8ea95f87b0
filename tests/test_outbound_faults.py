"""Row O1: the outbox sender against a misbehaving relay (Postfix's ``smtp-sink``).

Each fault runs the real sender loop (``send_pass`` every 20 ms, real clock)
with shortened retry timers: base 1 s, so the promised schedule is 1 s, 2 s, ...
plus up to 10 % jitter (:func:`mailgate.outbound.send.retry_delay`).  Attempt
times are measured with the wall clock and compared with the schedule the
sender wrote down (``next_attempt_at``) and with the backoff it promises.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import RelaySettings, SenderSettings, Settings
from mailgate.dealer_settings import load_dealer_config
from mailgate.models import OutboxMail, utcnow
from mailgate.outbound.outbox import enqueue_template, release_dead_claims
from mailgate.outbound.send import send_pass

from .conftest import free_port
from .smtp_sink import start_sink

POLL = 0.02  # seconds between two sender passes
BASE = 1.0  # retry_base_seconds: the schedule is 1 s, 2 s, 4 s ... (+ <= 10 % jitter)
ADMIN = "admin@autohaus.example"
RECIPIENTS = ["anna@autohaus.example", "ben@autohaus.example"]


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt of the watched row, as the test saw it."""

    started: float  # wall clock (time.time()) when the pass began
    ended: float  # wall clock when the pass returned
    status: str
    next_attempt_at: datetime
    last_error: str


@pytest.fixture
def outbox(sqlite_dealer: sessionmaker[Session]) -> sessionmaker[Session]:
    """A migrated SQLite database with the example dealership (the sender is backend-neutral;
    the PostgreSQL claim path is exercised by test_sender and the O2/O3 crash tests)."""
    return sqlite_dealer


def settings_for(port: int, *, max_attempts: int = 3, timeout: int = 1) -> Settings:
    return replace(
        Settings(),
        relay=RelaySettings(host="127.0.0.1", port=port, timeout=timeout),
        sender=SenderSettings(
            poll_interval=POLL,
            retry_base_seconds=BASE,  # type: ignore[arg-type] - int in config, float works
            retry_max_seconds=60,
            max_attempts=max_attempts,
        ),
    )


def enqueue_one(factory: sessionmaker[Session], recipients: list[str] = RECIPIENTS) -> int:
    with factory() as session:
        dealer = load_dealer_config(session)
        enqueue_template(
            session,
            dealer,
            key="o1:1",
            purpose="notification",
            template="unassigned",
            language="en",
            context={
                "inbound": {
                    "id": 1,
                    "subject": "O1",
                    "sender": "x@kunden.example",
                    "received_at": "now",
                    "reason": "test",
                }
            },
            to=[("", rcpt) for rcpt in recipients],
        )
        session.commit()
        row_id = session.scalar(select(OutboxMail.id).where(OutboxMail.idempotency_key == "o1:1"))
    assert row_id is not None
    return row_id


def drive(
    factory: sessionmaker[Session], settings: Settings, row_id: int, budget: float
) -> list[Attempt]:
    """Run sender passes until the row is sent or dead; every attempt on it, in order."""
    attempts: list[Attempt] = []
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        started = time.time()
        send_pass(factory, settings)
        ended = time.time()
        with factory() as session:
            row = session.get(OutboxMail, row_id)
            assert row is not None
            if row.attempts > len(attempts):
                assert row.attempts == len(attempts) + 1, "two attempts in one pass"
                attempts.append(
                    Attempt(started, ended, row.status, row.next_attempt_at, row.last_error or "")
                )
            if row.status in ("sent", "dead"):
                return attempts
        time.sleep(POLL)
    raise AssertionError(f"row {row_id} neither sent nor dead after {budget} s: {attempts}")


def notices(factory: sessionmaker[Session]) -> list[OutboxMail]:
    with factory() as session:
        return list(
            session.scalars(select(OutboxMail).where(OutboxMail.purpose == "delivery_failure"))
        )


# fault -> (smtp-sink options, what last_error must show, max_attempts); the slow relay
# costs a 1 s timeout per attempt, so it gets two attempts (one retry) to stay fast.
TEMPORARY_FAULTS = {
    "4xx-per-recipient": (["-r", "RCPT"], "450", 3),
    "4xx-all": (["-r", "."], "450", 3),
    "421-disconnect": (["-Q", "."], "421", 3),
    "drop-after-data": (["-q", "."], "SMTPServerDisconnected", 3),
    "slow-reply": (["-W", ".:3"], "timed out", 2),
}


@pytest.mark.parametrize("fault", list(TEMPORARY_FAULTS))
def test_o1_temporary_relay_faults_are_retried_on_schedule(
    fault: str, outbox: sessionmaker[Session], tmp_path: Path
) -> None:
    """O1: smtp-sink ``-r RCPT`` / ``-r .`` (4xx per recipient / for the whole mail), ``-Q .``
    (421 + disconnect), ``-q .`` (drop after DATA), ``-W .:3`` (reply slower than the 1 s
    relay timeout): each attempt is temporary, retried at 1 s then 2 s (+ jitter) with attempt
    times within ±10 % of the promised backoff, and after ``max_attempts`` the mail is dead and
    the admin is told."""
    faults, evidence, tries = TEMPORARY_FAULTS[fault]
    sink = start_sink(tmp_path / "sink", faults)
    try:
        row_id = enqueue_one(outbox)
        attempts = drive(outbox, settings_for(sink.port, max_attempts=tries), row_id, budget=15)
        at_relay = sink.messages()
    finally:
        sink.stop()
    assert [a.status for a in attempts] == ["pending"] * (tries - 1) + ["dead"], attempts
    assert all(evidence in a.last_error for a in attempts), attempts
    if fault == "4xx-per-recipient":  # every refused recipient is named with its code
        assert all(f"{rcpt}: 450" in attempts[0].last_error for rcpt in RECIPIENTS)
    if fault == "drop-after-data":  # RFC 1047: the relay has every copy, all one Message-ID
        assert len(at_relay) == tries and len({m["Message-ID"] for m in at_relay}) == 1
    assert f"gave up after {tries} attempts" in attempts[-1].last_error
    for n, (before, after) in enumerate(pairwise(attempts), start=1):
        backoff = BASE * 2 ** (n - 1)
        promised = before.next_attempt_at.timestamp() - before.ended
        # what the sender promised: the exponential backoff plus at most 10 % jitter
        assert backoff * 0.9 <= promised <= backoff * 1.1 + 0.05, (n, promised)
        # what happened: the next attempt within ±10 % of that backoff after the last one
        gap = after.started - before.ended
        assert backoff * 0.9 <= gap <= backoff * 1.1 + POLL + 0.05, (n, gap)
        late = after.started - before.next_attempt_at.timestamp()
        assert -0.1 * backoff <= late <= 0.1 * backoff, (n, late)
    [notice] = notices(outbox)
    assert list(notice.recipients) == [ADMIN]
    print(f"FIGURE O1 {fault}: attempts {len(attempts)}, gaps {_gaps(attempts)} s")


PERMANENT_FAULTS = {"5xx-per-recipient": ["-f", "RCPT"], "5xx-all": ["-f", "."]}


@pytest.mark.parametrize("fault", list(PERMANENT_FAULTS))
def test_o1_permanent_relay_refusal_is_dead_after_one_attempt_and_alerts_the_admin(
    fault: str, outbox: sessionmaker[Session], tmp_path: Path
) -> None:
    """O1: smtp-sink ``-f RCPT`` / ``-f .`` (5xx per recipient / for the whole mail): dead
    after exactly one attempt, no retry scheduled, one ``delivery_failure`` notice to the
    admin naming the mail and the relay's answer."""
    sink = start_sink(tmp_path / "sink", PERMANENT_FAULTS[fault])
    try:
        row_id = enqueue_one(outbox)
        attempts = drive(outbox, settings_for(sink.port, max_attempts=12), row_id, budget=5)
        time.sleep(3 * POLL)
        for _ in range(3):  # further passes never touch the dead row again
            send_pass(outbox, settings_for(sink.port, max_attempts=12))
    finally:
        sink.stop()
    assert [a.status for a in attempts] == ["dead"]
    with outbox() as session:
        row = session.get(OutboxMail, row_id)
        assert row is not None and row.attempts == 1 and row.status == "dead"
        assert "500" in (row.last_error or "") and "gave up" not in (row.last_error or "")
    if fault == "5xx-per-recipient":
        assert all(f"{rcpt}: 500" in attempts[0].last_error for rcpt in RECIPIENTS)
    [notice] = notices(outbox)
    assert (
        list(notice.recipients) == [ADMIN]
        and notice.idempotency_key == f"delivery_failure:{row_id}"
    )
    assert notice.raw is not None and b"500" in notice.raw
    # the notice itself is refused by the same relay: dead too, and no notice about a notice
    assert notice.status == "dead" and len(notices(outbox)) == 1


class _PickyRelay:
    """An aiosmtpd relay refusing some recipients: 450 for ``busy@``, 550 for ``gone@``.

    smtp-sink refuses every RCPT alike, so the per-recipient mix needs our own sink.
    """

    def __init__(self) -> None:
        self.received: list[list[str]] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if address.startswith("busy@"):
            return "450 4.2.1 mailbox busy"
        if address.startswith("gone@"):
            return "550 5.1.1 unknown user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            self.received.append(list(envelope.rcpt_tos))
        return "250 OK"


def test_o1_partial_recipient_refusal_is_recorded_per_recipient(
    outbox: sessionmaker[Session],
) -> None:
    """O1: of three recipients the relay accepts one, defers one (450), refuses one (550):
    the mail is sent to the accepted one, and the row records each refused recipient with
    its own code."""
    relay = _PickyRelay()
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        row_id = enqueue_one(
            outbox, ["anna@autohaus.example", "busy@autohaus.example", "gone@autohaus.example"]
        )
        [attempt] = drive(outbox, settings_for(port), row_id, budget=5)
    finally:
        controller.stop()
    assert relay.received == [["anna@autohaus.example"]]
    assert attempt.status == "sent"
    assert "busy@autohaus.example: 450" in attempt.last_error
    assert "gone@autohaus.example: 550" in attempt.last_error
    assert "anna@autohaus.example" not in attempt.last_error


def _gaps(attempts: list[Attempt]) -> list[float]:
    return [round(b.started - a.ended, 2) for a, b in pairwise(attempts)]


def test_claims_of_a_dead_local_sender_are_released_at_once(
    outbox: sessionmaker[Session],
) -> None:
    """O6 support: rows claimed by a sender process of this host that no longer exists go
    back to ``pending`` at the next pass (not after the 5-minute lease); claims of a live
    process or of another host are left alone."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    dead_pid = int(gone.stdout)  # reaped by run(): this pid is free now
    host = socket.gethostname()
    owners = {
        "dead": f"sender:{host}:{dead_pid}:1:0000abcd",
        "alive": f"sender:{host}:{os.getpid()}:1:0000abcd",
        "elsewhere": f"sender:other-host.example:{dead_pid}:1:0000abcd",
    }
    ids = {}
    for n, (name, owner) in enumerate(owners.items()):
        with outbox() as session:
            dealer = load_dealer_config(session)
            enqueue_template(
                session,
                dealer,
                key=f"claim:{n}",
                purpose="notification",
                template="unassigned",
                language="en",
                context={
                    "inbound": {
                        "id": n,
                        "subject": "s",
                        "sender": "x",
                        "received_at": "now",
                        "reason": "r",
                    }
                },
                to=[("", "anna@autohaus.example")],
            )
            row_id = session.scalar(
                select(OutboxMail.id).where(OutboxMail.idempotency_key == f"claim:{n}")
            )
            session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == row_id)
                .values(
                    status="sending", claimed_by=owner, lease_until=utcnow() + timedelta(minutes=5)
                )
            )
            session.commit()
            ids[name] = row_id
    with outbox() as session:
        assert release_dead_claims(session, host) == 1
    with outbox() as session:
        status = {name: session.get(OutboxMail, row_id).status for name, row_id in ids.items()}  # type: ignore[union-attr]
    assert status == {"dead": "pending", "alive": "sending", "elsewhere": "sending"}
