"""The outbox sender (flow step 4): delivers claimed mails through the SMTP relay.

4xx replies, timeouts and connection failures are temporary: the mail goes back
to ``pending`` with exponential backoff (plus a little jitter so a recovering
relay is not hit by every mail at once).  5xx is permanent: the mail is ``dead``
after one attempt and the dealer's admin gets a ``delivery_failure`` notice —
never for a dead notice itself, so a broken admin address cannot loop.

Delivery is at-least-once: a crash after the relay accepted DATA but before
``sent`` is committed sends the mail again, with the same Message-ID
(RFC 1047's duplicate window cannot be closed from the client side).
"""

from __future__ import annotations

import logging
import os
import random
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db, wakeup
from mailgate.config import RelaySettings, SenderSettings, Settings
from mailgate.dealer_settings import DealerConfig, load_dealer_config
from mailgate.labels import purpose_label
from mailgate.models import OutboxMail, OutboxStatus, utcnow
from mailgate.outbound.outbox import (
    ComposedMail,
    claim_due,
    compose_template,
    enqueue_composed,
    materialise,
    release_dead_claims,
    renew_claim,
)

log = logging.getLogger("mailgate.outbound")
FAILURE_PURPOSE = "delivery_failure"
TEMPORARY, PERMANENT, SENT = "temporary", "permanent", "sent"


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt came to, and the relay's answer in plain words."""

    outcome: str  # SENT | TEMPORARY | PERMANENT
    detail: str = ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe_refused(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in refused.items())


def open_relay(relay: RelaySettings, timeout: float) -> smtplib.SMTP:
    """A connection to the relay as its ``security`` says: TLS from the first byte for "ssl",
    plain otherwise (STARTTLS and login are the caller's steps: each reports them its way)."""
    if relay.security == "ssl":
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(relay.host, relay.port, timeout=timeout, context=context)
    return smtplib.SMTP(relay.host, relay.port, timeout=timeout)


class RelayConnection:
    """One lazily opened SMTP connection, reused for the mails of a pass.

    If the session cannot even be set up (connect, EHLO, STARTTLS, AUTH), that
    says nothing about the mails: they all stay temporary, and the rest of the
    pass reuses the same answer instead of waiting out one timeout per mail.
    """

    def __init__(self, relay: RelaySettings) -> None:
        self._relay = relay
        self._smtp: smtplib.SMTP | None = None
        self._broken: Attempt | None = None

    def _open(self) -> smtplib.SMTP:
        relay = self._relay
        smtp = open_relay(relay, relay.timeout)
        try:
            if relay.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if relay.username:
                smtp.login(relay.username, relay.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            # The relay may have dropped an idle connection between two mails;
            # finding out with NOOP costs one round trip, finding out with MAIL
            # would cost the mail a retry.
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        self._smtp = self._open()
        return self._smtp

    def send(self, mail: OutboxMail) -> Attempt:
        if self._broken is not None:
            return self._broken
        try:
            smtp = self._connection()
        except smtplib.SMTPResponseException as exc:
            self._broken = Attempt(
                TEMPORARY, f"relay refused the session: {exc.smtp_code} {_text(exc.smtp_error)}"
            )
            return self._broken
        except (smtplib.SMTPException, OSError) as exc:
            self._broken = Attempt(TEMPORARY, f"relay unreachable: {type(exc).__name__}: {exc}")
            return self._broken
        try:
            refused = smtp.sendmail(mail.mail_from, list(mail.recipients), mail.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            permanent = all(code >= 500 for code, _ in exc.recipients.values())
            detail = "all recipients refused: " + _describe_refused(exc.recipients)
            return Attempt(PERMANENT if permanent else TEMPORARY, detail)
        except smtplib.SMTPResponseException as exc:
            self.close()
            detail = f"relay answered {exc.smtp_code} {_text(exc.smtp_error)}".strip()
            return Attempt(PERMANENT if 500 <= exc.smtp_code < 600 else TEMPORARY, detail)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            return Attempt(TEMPORARY, f"connection to relay failed: {type(exc).__name__}: {exc}")
        except ValueError as exc:
            # smtplib refuses addresses with newlines or non-ASCII characters:
            # retrying will not change that (rows written before enqueue checked).
            self.close()
            return Attempt(PERMANENT, f"mail cannot be sent: {exc}")
        if refused:
            return Attempt(SENT, "some recipients refused: " + _describe_refused(refused))
        return Attempt(SENT)

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


@dataclass
class _Pass:
    """Everything one pass shares, so helpers need not take ten arguments."""

    factory: sessionmaker[Session]
    settings: Settings
    dealer: DealerConfig
    me: str
    start: datetime
    started: float  # time.monotonic() at start
    lease: timedelta
    report: SendReport

    def clock(self) -> datetime:
        """The pass's ``now`` moved on by real elapsed time (works for a set clock too)."""
        return self.start + timedelta(seconds=time.monotonic() - self.started)


def retry_delay(sender: SenderSettings, attempts: int) -> float:
    """Seconds until the next try after ``attempts`` failed ones: exponential, capped,
    plus up to 10 % jitter so a recovering receiver is not hit by every row at once."""
    delay = min(sender.retry_base_seconds * 2 ** (attempts - 1), sender.retry_max_seconds)
    return delay * (1 + random.uniform(0, 0.1))  # nosec B311  # retry jitter, not a secret


def _lease_for(relay: RelaySettings) -> timedelta:
    # Longer than one mail can take (connect + EHLO + TLS + AUTH + MAIL/RCPT/DATA,
    # each up to ``timeout``); once a quarter of it has passed in a pass, the
    # lease is renewed before every mail.
    return timedelta(seconds=max(300, 10 * relay.timeout))


def send_pass(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 100,
    me: str = "sender",
) -> SendReport:
    """Deliver (or suppress) every due mail once; returns what happened."""
    start = now or utcnow()
    host = socket.gethostname()
    owner = f"{me}:{host}:{os.getpid()}:{threading.get_ident()}"
    owner = f"{owner}:{random.getrandbits(32):08x}"[:255]  # nosec B311  # lease tag, not a secret
    lease = _lease_for(settings.relay)
    # Reader transactions (SQLite): a pass that finds nothing due, which is most
    # of them now that every commit of an outbox row wakes the sender, never
    # takes the write lock; the claim does, briefly, and re-checks (claim_due).
    with db.reader_factory(factory)() as session:
        release_dead_claims(session, host)  # a restarted sender resends at once (commits)
        dealer = load_dealer_config(session)
        session.commit()
        rows = claim_due(
            session, owner, start, limit=limit, lease_seconds=int(lease.total_seconds())
        )
    state = _Pass(factory, settings, dealer, owner, start, time.monotonic(), lease, SendReport())
    if not rows:
        return state.report
    hold = None
    if not dealer.send_mails:
        hold = "send_mails is off"
    elif not settings.relay.host:
        hold = "no relay configured"
    relay = RelayConnection(settings.relay)
    rest = list(rows)
    try:
        while rest:
            composed, rest = _render_group(state, rest)
            try:
                ready = _store_group(state, composed, suppress=hold)
            except Exception:  # noqa: BLE001 - the group's rows come back when their lease ends
                ids = [row.id for row, _ in composed]
                log.exception("outbox %s: could not store the composed mails", ids)
                continue
            for row in ready if not hold else ():
                try:
                    _send_one(state, relay, row)
                except Exception:  # one broken row must not stop the others
                    log.exception(
                        "outbox %s: unexpected error; retried when its lease ends", row.id
                    )
    finally:
        relay.close()
    return state.report


# Rows rendered before their bytes are stored in one transaction (one commit, on
# SQLite one fsync and one write-lock hold, instead of one per mail), bounded in
# count and rendering time so the first mail of a burst still leaves within
# milliseconds and a web click never waits behind a long group.
GROUP_ROWS = 20
GROUP_SECONDS = 0.05
# After a pass that delivered something, the next one starts this much later at
# the earliest: while the worker drains a backlog it commits notifications every
# few milliseconds, and a pass per commit cost more (claim, reads, commits) than
# the mails it sent.  A lone notification never waits for it: it follows a quiet
# sender.  At 10 mails/s a mail arrives 100 ms after the one before.
COALESCE_SECONDS = 0.05


def _render_group(
    state: _Pass, rows: list[OutboxMail]
) -> tuple[list[tuple[OutboxMail, ComposedMail | None]], list[OutboxMail]]:
    """Render rows until GROUP_ROWS or GROUP_SECONDS; (rendered, the rows left for later).

    A template that cannot render is a permanent failure: the row goes dead
    and the admin is told, like a 5xx from the relay.
    """
    composed: list[tuple[OutboxMail, ComposedMail | None]] = []
    started = time.monotonic()
    taken = 0
    for row in rows:
        taken += 1
        try:
            composed.append((row, materialise(state.dealer, row)))
        except Exception as exc:  # noqa: BLE001 - a broken template/context kills one mail only
            reason = f"could not compose: {type(exc).__name__}: {exc}"[:2000]
            log.error("outbox %s: %s", row.id, reason)
            _settle(
                state,
                row,
                _failure_notice(state.dealer, row, reason),
                status=OutboxStatus.DEAD,
                last_error=reason,
            )
        if taken >= GROUP_ROWS or time.monotonic() - started >= GROUP_SECONDS:
            break
    return composed, rows[taken:]


def _send_one(state: _Pass, relay: RelayConnection, row: OutboxMail) -> None:
    lease = state.lease
    if time.monotonic() - state.started > lease.total_seconds() / 4:
        # The pass has run long: renew before sending, and skip the row if
        # another sender took it over.  A fresh claim needs no renewal (its
        # lease has at least three quarters left), which saves a commit, an
        # fsync on SQLite, per notification.
        with state.factory() as session:
            if not renew_claim(session, row.id, state.me, state.clock() + lease):
                log.warning("outbox %s: claim lost to another sender; skipped", row.id)
                return
    _record(state, row, relay.send(row))


def _store_group(
    state: _Pass, composed: list[tuple[OutboxMail, ComposedMail | None]], *, suppress: str | None
) -> list[OutboxMail]:
    """Store the rendered rows' bytes in one transaction; the rows that are ours to send.

    The bytes are committed before anything else happens to a row (a resend
    after a crash sends the same mail, Message-ID included).  Also for
    suppressed mails: "send mails: no" still records every mail in full, and
    the same statement settles the row as suppressed.  A row another sender
    has taken over since (its claim is gone) is left alone and not returned.
    """
    if not composed:
        return []
    changes = [(row, _stored_values(mail, suppress)) for row, mail in composed]
    with state.factory() as session:
        at_once = session.get_bind().dialect.supports_sane_multi_rowcount
        ready = _store_rows(session, state.me, changes, suppress, at_once=at_once)
        if ready is None:  # a row was taken over meanwhile: find out which, one by one
            session.rollback()
            ready = _store_rows(session, state.me, changes, suppress, at_once=False)
        assert ready is not None
        session.commit()
    for row, mail in composed:
        if mail is not None:
            row.raw, row.subject, row.message_id = mail.raw, mail.subject, mail.message_id
    if suppress:
        state.report.suppressed += len(ready)
    return ready


def _stored_values(mail: ComposedMail | None, suppress: str | None) -> dict[str, object]:
    values: dict[str, object] = {}
    if mail is not None:
        values.update(raw=mail.raw, subject=mail.subject[:998], message_id=mail.message_id)
    if suppress:
        values.update(
            status=OutboxStatus.SUPPRESSED, claimed_by=None, lease_until=None, last_error=suppress
        )
    return values


def _store_rows(
    session: Session,
    me: str,
    changes: list[tuple[OutboxMail, dict[str, object]]],
    suppress: str | None,
    *,
    at_once: bool,
) -> list[OutboxMail] | None:
    """Write the values of rows this sender still holds; the rows written, in order.

    ``at_once``: one UPDATE executed for all rows with the same columns to set
    (executemany), None if the total row count shows a claim was lost — the
    caller then rolls back and asks again one by one.  Why: an ORM UPDATE per
    row built and compiled its statement each time, the larger part of the
    sender's CPU while a backlog drains (issue 18).
    """
    table = OutboxMail.__table__
    where = [table.c.id == bindparam("w_id"), table.c.claimed_by == bindparam("w_me")]
    if suppress:
        where.append(table.c.status == OutboxStatus.SENDING)
    groups: dict[tuple[str, ...], list[tuple[OutboxMail, dict[str, object]]]] = {}
    for row, values in changes:
        if values:  # a row that held its bytes already has nothing to store
            groups.setdefault(tuple(sorted(values)), []).append((row, values))
    written: set[int] = set()
    for keys, members in groups.items():
        statement = update(table).where(*where).values({k: bindparam(f"v_{k}") for k in keys})
        params = [
            {"w_id": row.id, "w_me": me, **{f"v_{k}": v for k, v in values.items()}}
            for row, values in members
        ]
        if at_once:
            if session.connection().execute(statement, params).rowcount != len(members):
                return None
            written.update(row.id for row, _ in members)
            continue
        for (row, _), one in zip(members, params, strict=True):
            if session.connection().execute(statement, one).rowcount:
                written.add(row.id)
    return [row for row, values in changes if not values or row.id in written]


def _record(state: _Pass, row: OutboxMail, attempt: Attempt) -> None:
    attempts = row.attempts + 1
    sender = state.settings.sender
    if attempt.outcome == SENT:
        detail = attempt.detail or None
        if _settle(
            state,
            row,
            status=OutboxStatus.SENT,
            attempts=attempts,
            last_error=detail,
            sent_at=state.clock(),
        ):
            state.report.sent += 1
        if detail:
            log.warning("outbox %s sent, but %s", row.id, detail)
    elif attempt.outcome == TEMPORARY and attempts < sender.max_attempts:
        delay = retry_delay(sender, attempts)
        due = state.clock() + timedelta(seconds=delay)
        if _settle(
            state,
            row,
            status=OutboxStatus.PENDING,
            attempts=attempts,
            last_error=attempt.detail,
            next_attempt_at=due,
        ):
            state.report.retried += 1
        log.warning("outbox %s: %s; retry in %.0f s", row.id, attempt.detail, delay)
    else:
        reason = attempt.detail
        if attempt.outcome == TEMPORARY:
            reason = f"gave up after {attempts} attempts: {attempt.detail}"
        # Composed before the transaction: a template or address problem may cost
        # the notice, never the dead mark; the two are committed together.
        notice = _failure_notice(state.dealer, row, reason)
        if _settle(
            state, row, notice, status=OutboxStatus.DEAD, attempts=attempts, last_error=reason
        ):
            state.report.dead += 1
        log.error("outbox %s is dead: %s", row.id, reason)


def _failure_notice(dealer: DealerConfig, row: OutboxMail, reason: str) -> ComposedMail | None:
    """The admin's ``delivery_failure`` mail, or None (no admin, a notice itself, or broken)."""
    if row.purpose == FAILURE_PURPOSE or not dealer.admin_address:
        return None
    failed = {
        "id": row.id,
        "purpose": row.purpose,
        "purpose_label": purpose_label(row.purpose, dealer.language),
        "recipients": [str(r) for r in row.recipients],
        "subject": row.subject,
        "error": reason,
    }
    try:
        return compose_template(
            dealer,
            key=f"{FAILURE_PURPOSE}:{row.id}",
            template=FAILURE_PURPOSE,
            language=dealer.language,
            context={"failed": failed},
            to=[("", dealer.admin_address)],
        )
    except Exception:  # noqa: BLE001 - the notice is best effort, the dead mark is not
        log.exception("outbox %s: cannot compose the delivery failure notice", row.id)
        return None


def _settle(
    state: _Pass, row: OutboxMail, notice: ComposedMail | None = None, **values: object
) -> bool:
    """Release our claim with the attempt's outcome (+ the admin notice, atomically).

    Only a row we still hold is touched: one re-claimed by another sender after
    our lease ran out is theirs now.  Returns whether the row was ours.
    """
    with state.factory() as session:
        changed = session.execute(
            update(OutboxMail)
            .where(
                OutboxMail.id == row.id,
                OutboxMail.claimed_by == state.me,
                OutboxMail.status == OutboxStatus.SENDING,
            )
            .values(claimed_by=None, lease_until=None, **values)
        ).rowcount
        if changed and notice is not None:
            key = f"{FAILURE_PURPOSE}:{row.id}"
            enqueue_composed(session, notice, key=key, purpose=FAILURE_PURPOSE, lead_id=row.lead_id)
        session.commit()
    return bool(changed)


def run_sender(
    factory: sessionmaker[Session],
    settings: Settings,
    stop: threading.Event,
    wait: Callable[[float], bool] | None = None,
) -> None:
    """Send due mails until ``stop`` is set: at once when a mail is enqueued, else polling.

    Woken when an outbox row is committed (:mod:`mailgate.wakeup`: in this
    process, by PostgreSQL NOTIFY from others, on SQLite by a short poll for
    due rows), so a notification leaves within milliseconds; otherwise passes
    start ``poll_interval`` apart (the time a pass took is not added to it),
    which picks up retries that came due.  After a failed pass it waits the
    whole interval, so a broken database is not hammered.
    """
    log.info("outbox sender started (relay %s)", settings.relay.host or "none: mails suppressed")
    wait = wait or _waiter(factory, stop)
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = send_pass(factory, settings)
            if report.sent or report.retried or report.dead or report.suppressed:
                log.info("outbox pass: %s", report)
                # A backlog: let the worker's next commits gather into one pass
                # (each pass claims with a commit of its own).
                stop.wait(COALESCE_SECONDS)
        except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
            log.exception("outbox pass failed; next try in %s s", settings.sender.poll_interval)
            stop.wait(settings.sender.poll_interval)
            continue
        wait(max(0.0, settings.sender.poll_interval - (time.monotonic() - started)))
    log.info("outbox sender stopped")


def _waiter(factory: sessionmaker[Session], stop: threading.Event) -> Callable[[float], bool]:
    url = factory.kw["bind"].url.render_as_string(hide_password=False)
    return wakeup.waiter(url, wakeup.OUTBOX, stop, _due_check(url))


def _due_check(url: str) -> Callable[[], bool] | None:
    """On SQLite: is a pending mail due?  One indexed read on a reader connection."""
    if not url.startswith("sqlite") or ":memory:" in url:
        return None
    reader = db.create_db_engine(url, pool_size=1, reader=True)

    def has_work() -> bool:
        query = (
            select(OutboxMail.id)
            .where(
                OutboxMail.status == OutboxStatus.PENDING, OutboxMail.next_attempt_at <= utcnow()
            )
            .limit(1)
        )
        with reader.connect() as conn:
            return conn.execute(query).first() is not None

    return has_work
