"""The outbox sender: delivers claimed mails through the configured SMTP relay.

4xx replies, timeouts and connection failures are temporary: the mail goes back
to ``pending`` with exponential backoff (plus a little jitter so a recovering
relay is not hit by every mail at once).  5xx is permanent: the mail is ``dead``
after one attempt and the dealer's admin gets a ``delivery_failure`` notice —
never for a dead notice itself, so a broken admin address cannot loop.
"""

from __future__ import annotations

import logging
import random
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import RelaySettings, Settings
from mailgate.dealer_settings import DealerConfig, load_dealer_config
from mailgate.models import OutboxMail, OutboxStatus, utcnow
from mailgate.outbound.outbox import claim_due, enqueue_template

log = logging.getLogger("mailgate.outbound")
FAILURE_PURPOSE = "delivery_failure"


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt came to: sent, temporary or permanent failure."""

    outcome: str  # "sent" | "temporary" | "permanent"
    detail: str = ""


class RelayConnection:
    """One lazily opened SMTP connection, reused for the mails of a pass."""

    def __init__(self, relay: RelaySettings) -> None:
        self._relay = relay
        self._smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        relay = self._relay
        if relay.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                relay.host, relay.port, timeout=relay.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
            if relay.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if relay.username:
            smtp.login(relay.username, relay.password)
        return smtp

    def send(self, mail: OutboxMail) -> Attempt:
        try:
            if self._smtp is None:
                self._smtp = self._open()
            refused = self._smtp.sendmail(mail.mail_from, list(mail.recipients), mail.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            detail = _describe_refused(exc.recipients)
            permanent = all(code >= 500 for code in codes)
            return Attempt("permanent" if permanent else "temporary", detail)
        except smtplib.SMTPResponseException as exc:
            self.close()
            error = exc.smtp_error
            text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            detail = f"relay answered {exc.smtp_code} {text}".strip()
            permanent = 500 <= exc.smtp_code < 600 and not isinstance(exc, smtplib.SMTPConnectError)
            return Attempt("permanent" if permanent else "temporary", detail)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            return Attempt("temporary", f"relay unreachable: {type(exc).__name__}: {exc}")
        if refused:
            return Attempt("sent", "some recipients refused: " + _describe_refused(refused))
        return Attempt("sent")

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _describe_refused(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{rcpt}: {code} {msg.decode('utf-8', 'replace') if isinstance(msg, bytes) else msg}"
        for rcpt, (code, msg) in refused.items()
    )


def send_pass(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 100,
    me: str = "sender",
) -> SendReport:
    """Deliver every due mail once; returns what happened."""
    now = now or utcnow()
    report = SendReport()
    me = f"{me}:{threading.get_ident()}:{random.getrandbits(32):08x}"
    with factory() as session:
        dealer = load_dealer_config(session)
        rows = claim_due(session, me, now, limit=limit)
    if not rows:
        return report
    hold = None
    if not dealer.send_mails:
        hold = "send_mails is off"
    elif not settings.relay.host:
        hold = "no relay configured"
    connection = RelayConnection(settings.relay)
    try:
        for row in rows:
            if hold:
                _finish(factory, row, me, OutboxStatus.SUPPRESSED, hold, now)
                report.suppressed += 1
                continue
            attempt = connection.send(row)
            _record_attempt(factory, settings, dealer, row, me, attempt, now, report)
    finally:
        connection.close()
    return report


def _record_attempt(
    factory: sessionmaker[Session],
    settings: Settings,
    dealer: DealerConfig,
    row: OutboxMail,
    me: str,
    attempt: Attempt,
    now: datetime,
    report: SendReport,
) -> None:
    attempts = row.attempts + 1
    if attempt.outcome == "sent":
        _finish(factory, row, me, OutboxStatus.SENT, attempt.detail or None, now, attempts)
        report.sent += 1
        return
    if attempt.outcome == "temporary" and attempts < settings.sender.max_attempts:
        delay = min(
            settings.sender.retry_base_seconds * 2 ** (attempts - 1),
            settings.sender.retry_max_seconds,
        )
        delay *= 1 + random.uniform(0, 0.1)
        with factory() as session:
            session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == row.id, OutboxMail.claimed_by == me)
                .values(
                    status=OutboxStatus.PENDING,
                    attempts=attempts,
                    claimed_by=None,
                    lease_until=None,
                    last_error=attempt.detail,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            )
            session.commit()
        log.warning("outbox %s: %s; retry in %.0f s", row.id, attempt.detail, delay)
        report.retried += 1
        return
    reason = attempt.detail
    if attempt.outcome == "temporary":
        reason = f"gave up after {attempts} attempts: {attempt.detail}"
    with factory() as session:
        session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == row.id, OutboxMail.claimed_by == me)
            .values(
                status=OutboxStatus.DEAD,
                attempts=attempts,
                claimed_by=None,
                lease_until=None,
                last_error=reason,
            )
        )
        if row.purpose != FAILURE_PURPOSE and dealer.admin_address:
            enqueue_template(
                session,
                dealer,
                key=f"{FAILURE_PURPOSE}:{row.id}",
                purpose=FAILURE_PURPOSE,
                template=FAILURE_PURPOSE,
                language=dealer.language,
                context={
                    "failed": {
                        "id": row.id,
                        "purpose": row.purpose,
                        "recipients": list(row.recipients),
                        "subject": row.subject,
                        "error": reason,
                    }
                },
                to=[("", dealer.admin_address)],
                lead_id=row.lead_id,
            )
        session.commit()
    log.error("outbox %s is dead: %s", row.id, reason)
    report.dead += 1


def _finish(
    factory: sessionmaker[Session],
    row: OutboxMail,
    me: str,
    status: OutboxStatus,
    detail: str | None,
    now: datetime,
    attempts: int | None = None,
) -> None:
    values: dict[str, object] = {
        "status": status,
        "claimed_by": None,
        "lease_until": None,
        "last_error": detail,
    }
    if status == OutboxStatus.SENT:
        values["sent_at"] = now
    if attempts is not None:
        values["attempts"] = attempts
    with factory() as session:
        session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == row.id, OutboxMail.claimed_by == me)
            .values(**values)
        )
        session.commit()


def run_sender(factory: sessionmaker[Session], settings: Settings, stop: threading.Event) -> None:
    """Send due mails every ``poll_interval`` seconds until ``stop`` is set."""
    log.info("outbox sender started (relay %s)", settings.relay.host or "none: mails suppressed")
    while not stop.is_set():
        try:
            report = send_pass(factory, settings)
            if report.sent or report.retried or report.dead:
                log.info("outbox pass: %s", report)
        except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
            log.exception("outbox pass failed; retrying")
        stop.wait(settings.sender.poll_interval)
