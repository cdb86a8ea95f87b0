"""Crash test (RELIABILITY.md G.1 row S2): SIGKILL the running service while clients deliver mail.

Invariants (RELIABILITY.md G): every message that got a 250 is stored and
becomes exactly one lead after restart; a message is stored more than once only
if the client had to re-send it because it never saw the 250 (the unavoidable
RFC 1047 window); nothing is answered 5xx.
"""

from __future__ import annotations

import os
import random
import signal
import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate import db
from mailgate.models import InboundMail, InboundStatus, Lead

from .mails import LEAD_ADDRESS, inquiry
from .procs import make_install, wait_for_port
from .smtp_campaign import close_quietly

MAILS = 300
CLIENTS = 4
KILLS = 30  # RELIABILITY.md S2: SIGKILL at random instants after a random DATA, then let it finish


class Campaign:
    def __init__(self, port: int) -> None:
        self.port = port
        self.acked: set[int] = set()
        self.attempts: Counter[int] = Counter()
        self.codes: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.sending = threading.Event()  # set whenever a client starts a transaction

    def deliver(self, numbers: list[int]) -> None:
        """Send each mail until a 250 is seen, reconnecting after every failure."""
        pending = list(numbers)
        smtp: smtplib.SMTP | None = None
        deadline = time.monotonic() + 240
        while pending and time.monotonic() < deadline:
            n = pending[0]
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=5)
                    smtp.ehlo("client.example")
                with self.lock:
                    self.attempts[n] += 1
                self.sending.set()
                smtp.sendmail("form@kunden.example", [LEAD_ADDRESS], _mail(n))
                with self.lock:
                    self.acked.add(n)
                    self.codes[250] += 1
                pending.pop(0)
            except smtplib.SMTPResponseException as exc:
                with self.lock:
                    self.codes[exc.smtp_code] += 1
                smtp = close_quietly(smtp)
                time.sleep(0.05)
            except (OSError, smtplib.SMTPException):
                smtp = close_quietly(smtp)
                time.sleep(0.05)
        close_quietly(smtp)


# A fast service could acknowledge all mails in fewer kills than the campaign needs to mean
# anything; kill early once this many mails were acknowledged since the last restart.
ACKS_PER_KILL = MAILS // (KILLS + 5)


def _sleep_unless_many_acked(campaign: Campaign, seconds: float) -> None:
    """Wait up to *seconds*, cut short once ACKS_PER_KILL more mails were acknowledged."""
    with campaign.lock:
        start = len(campaign.acked)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with campaign.lock:
            if len(campaign.acked) - start >= ACKS_PER_KILL:
                return
        time.sleep(0.005)


def _mail(n: int) -> bytes:
    return inquiry(
        n, message_id=f"<crash-{n}@kunden.example>", padding=random.Random(n).randint(0, 8000)
    )


@pytest.mark.timeout(600)
@pytest.mark.run_alone  # asserts a time bound: not beside other tests
def test_sigkill_campaign_loses_nothing_and_duplicates_no_lead(tmp_path: Path) -> None:
    """S2: kill -9 campaign (300 mails from 4 clients, up to 30 kills in the crash tier).

    Target: 0 acknowledged mails lost, 0 duplicate leads, recovery to accepting
    mail within 5 s of each restart, nothing answered 5xx.
    """
    install = make_install(tmp_path / "crash")
    rng = random.Random(2026)
    proc = install.start("serve")
    wait_for_port(install.smtp_port)
    campaign = Campaign(install.smtp_port)
    shares = [list(range(i, MAILS, CLIENTS)) for i in range(CLIENTS)]
    clients = [threading.Thread(target=campaign.deliver, args=(share,)) for share in shares]
    for thread in clients:
        thread.start()
    kills = 0
    try:
        while kills < KILLS and any(t.is_alive() for t in clients):
            # A random instant 0-500 ms after a transaction started on this instance.
            campaign.sending.clear()
            campaign.sending.wait(timeout=10)
            _sleep_unless_many_acked(campaign, rng.uniform(0.0, 0.5))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = install.start("serve")
            started = time.monotonic()
            wait_for_port(install.smtp_port)
            assert time.monotonic() - started < 5, "recovery to accepting mail took over 5 s"
    finally:
        for thread in clients:
            thread.join(timeout=300)
        # let the restarted service finish processing, then stop it cleanly
        _wait_until_processed(install.db_url, timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    assert kills >= 10, f"only {kills} kills: the campaign ended too early to mean much"
    assert campaign.acked == set(range(MAILS)), "some mails were never acknowledged"
    assert not [code for code in campaign.codes if code >= 500], campaign.codes

    engine = db.create_db_engine(install.db_url)
    with db.make_session_factory(engine)() as session:
        rows = session.execute(select(InboundMail.message_id, InboundMail.status)).all()
        leads = session.execute(
            select(InboundMail.message_id).join(Lead, Lead.inbound_id == InboundMail.id)
        ).all()
    engine.dispose()
    stored = Counter(mid for mid, _ in rows)
    for n in range(MAILS):
        mid = f"<crash-{n}@kunden.example>"
        assert stored[mid] >= 1, f"mail {n} acknowledged but not stored"
        if campaign.attempts[n] == 1:
            assert stored[mid] == 1, f"mail {n} sent once but stored {stored[mid]} times"
    lead_counts = Counter(mid for (mid,) in leads)
    wrong = {n: lead_counts[f"<crash-{n}@kunden.example>"] for n in range(MAILS)}
    wrong = {n: c for n, c in wrong.items() if c != 1}
    statuses = Counter(status for _, status in rows)
    assert not wrong, f"mails without exactly one lead: {wrong}; inbound statuses {statuses}"
    assert {status for _, status in rows} <= {InboundStatus.PROCESSED, InboundStatus.DISCARDED}
    resent = sum(1 for c in campaign.attempts.values() if c > 1)
    print(
        f"FIGURE S2 SIGKILL campaign on serve: {kills} kills, {len(campaign.acked)}/{MAILS} "
        f"acknowledged, {len(set(stored))} stored ({len(rows)} rows, {resent} re-sent after a "
        f"lost 250), lost 0, leads {len(leads)}, duplicate leads 0"
    )


def _wait_until_processed(db_url: str, timeout: float) -> None:
    engine = db.create_db_engine(db_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with db.make_session_factory(engine)() as session:
                open_rows = session.scalars(
                    select(InboundMail.id).where(
                        InboundMail.status.in_([InboundStatus.RECEIVED, InboundStatus.PROCESSING])
                    )
                ).all()
            if not open_rows:
                return
            time.sleep(0.3)
    finally:
        engine.dispose()
