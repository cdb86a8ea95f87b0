"""SMTP delivery campaigns and the invariants of RELIABILITY.md section G.

Shared by the SMTP fault tests (S1, S3, S4: tests/test_smtp_faults.py) and the
power-loss test (S6: tests/test_power_loss.py). Every delivery attempt is
recorded; its envelope sender names the mail and the attempt
(``m<mail>.a<attempt>@kunden.example``), so a stored row can be traced to the
attempt that wrote it. The invariants:

* I1: every mail that got a 250 is stored, and the row of the very attempt that
  got it is committed;
* I2: a mail is stored more than once only if it was re-sent after an attempt
  without a 250;
* I3: every stored raw message is byte-identical to what was sent;
* I4: nothing is answered 5xx.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import InboundMail, InboundRaw

from .mails import LEAD_ADDRESS, inquiry

TEMPFAIL_REPLIES = {
    b"4.3.0 Temporary failure, please try again later",
}
ENVELOPE = re.compile(r"^m(\d+)\.a(\d+)@kunden\.example$")


def message(n: int, padding: int = 0) -> bytes:
    """Mail ``n`` with its test id as the first header."""
    body = inquiry(n, message_id=f"<fault-{n}@kunden.example>", padding=padding)
    return f"X-Test-Id: {n}\r\n".encode() + body


@dataclass
class Attempt:
    mail: int
    number: int
    code: int  # 0: connection lost or timed out before a reply
    reply: bytes
    started: float
    answered: float


@dataclass
class Campaign:
    """Clients that re-send every mail until they see its 250 (like an MTA's queue)."""

    port: int
    padding: int = 0
    client_timeout: float = 30
    retry_pause: float = 0.02
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, n: int) -> bytes:
        return message(n, self.padding)

    def deliver(self, numbers: Sequence[int], deadline: float) -> None:
        pending = list(numbers)
        tries: Counter[int] = Counter()
        smtp: smtplib.SMTP | None = None
        while pending and time.monotonic() < deadline:
            n = pending[0]
            tries[n] += 1
            started = time.monotonic()
            code, reply = 0, b""
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=self.client_timeout)
                    smtp.ehlo("mta.kunden.example")
                # The attempt's outcome is the last reply it got. One that breaks
                # off (the server died mid-transaction) ends with code 0, never with
                # the 250 of MAIL or RCPT: only DATA's 250 acknowledges the mail.
                outcome = smtp.mail(f"m{n}.a{tries[n]}@kunden.example")
                if outcome[0] == 250:
                    outcome = smtp.rcpt(LEAD_ADDRESS)
                if outcome[0] == 250:
                    outcome = smtp.data(self.sent(n))
                code, reply = outcome
                if code != 250:
                    smtp.rset()
            except (OSError, smtplib.SMTPException):
                smtp = close_quietly(smtp)
            with self.lock:
                self.attempts.append(Attempt(n, tries[n], code, reply, started, time.monotonic()))
            if code == 250:
                pending.pop(0)
            else:
                time.sleep(self.retry_pause)
        close_quietly(smtp)

    def run(self, mails: int, clients: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        shares = [range(i, mails, clients) for i in range(clients)]
        threads = [threading.Thread(target=self.deliver, args=(s, deadline)) for s in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def acked(self) -> dict[int, Attempt]:
        with self.lock:
            return {a.mail: a for a in self.attempts if a.code == 250}

    def wait_for_acks(self, count: int, timeout: float = 60) -> None:
        """Block until ``count`` mails are acknowledged: faults start mid-run."""
        deadline = time.monotonic() + timeout
        while len(self.acked()) < count:
            assert time.monotonic() < deadline, "deliveries did not get going"
            time.sleep(0.01)


def close_quietly(smtp: smtplib.SMTP | None) -> None:
    """Close a client whose server may be gone; returns None to reset the caller's handle."""
    if smtp is not None:
        try:
            smtp.close()
        except OSError:
            pass
    return None


@dataclass(frozen=True)
class StoredRow:
    id: int
    mail: int
    attempt: int
    raw: bytes


def stored_rows(factory: sessionmaker[Session]) -> list[StoredRow]:
    with factory() as session:
        rows = session.execute(
            select(InboundMail.id, InboundMail.envelope_from, InboundRaw.raw).join(
                InboundRaw, InboundRaw.inbound_id == InboundMail.id
            )
        ).all()
    result = []
    for row_id, envelope_from, raw in rows:
        match = ENVELOPE.match(envelope_from or "")
        assert match, f"row {row_id} has an envelope sender no client used: {envelope_from!r}"
        result.append(StoredRow(row_id, int(match[1]), int(match[2]), bytes(raw)))
    return result


def check_invariants(
    campaign: Campaign, factory: sessionmaker[Session], mails: int
) -> Counter[str]:
    """Assert I1-I4 and that every 250 names the committed row of its own attempt."""
    acked = campaign.acked()
    assert set(acked) == set(range(mails)), f"never acknowledged: {set(range(mails)) - set(acked)}"
    rows = stored_rows(factory)
    by_id = {row.id: row for row in rows}
    per_mail = Counter(row.mail for row in rows)
    tries = Counter(a.mail for a in campaign.attempts)
    for n, attempt in acked.items():
        match = re.search(rb"queued as (\d+)", attempt.reply)
        assert match, attempt.reply
        row = by_id.get(int(match[1]))
        assert row is not None, f"mail {n}: 250 for row {match[1]!r}, which is not committed"
        assert (row.mail, row.attempt) == (n, attempt.number), "250 names another attempt's row"
        if tries[n] == 1:
            assert per_mail[n] == 1, f"mail {n} sent once, stored {per_mail[n]} times"
        assert 1 <= per_mail[n] <= tries[n]
    for row in rows:
        assert hashlib.sha256(row.raw).digest() == hashlib.sha256(campaign.sent(row.mail)).digest()
    codes = Counter(str(a.code) for a in campaign.attempts)
    fives = [a for a in campaign.attempts if a.code >= 500]
    assert not fives, f"5xx answered: {fives[:3]}"
    for attempt in campaign.attempts:
        if 400 <= attempt.code < 500:
            assert attempt.reply in TEMPFAIL_REPLIES, attempt.reply  # no exception text
    return codes
