"""Delivers webhook events: claims due rows, POSTs them signed, records the outcome.

Same rules as the mail sender (:mod:`mailgate.outbound.send`), whose claim,
lease and backoff helpers this reuses: 2xx is delivered; 4xx (except 408 and
429) means the receiver refuses this request and will keep refusing it, so the
row is ``dead`` at once and the admin is told; 5xx, 408, 429, timeouts and
connection errors are retried with exponential backoff until
``sender.max_attempts``.  Redirects are not followed (a POST must not silently
turn into a GET elsewhere, nor be sent on to an address nobody checked): the
URL needs fixing, so they count as permanent.

Every attempt checks the destination again (:mod:`.destination`: public
addresses only, unless ``[webhooks] allow_private`` names it) and connects to
the address it checked (:mod:`.transport`).  A failure is stored as a short
class (:mod:`.failures`), never as the socket's text.

At-least-once: a crash after the receiver answered but before ``sent`` is
committed delivers again; ``X-Mailgate-Delivery`` (the idempotency key) lets
the receiver drop the duplicate.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.dealer_settings import DealerConfig, load_dealer_config
from mailgate.models import Webhook, WebhookDelivery, WebhookStatus, utcnow
from mailgate.outbound.outbox import (
    ComposedMail,
    claim_due,
    compose_template,
    enqueue_composed,
    renew_claim,
)
from mailgate.outbound.send import FAILURE_PURPOSE, retry_delay

from . import failures, transport
from .destination import (
    EMPTY_ALLOWLIST,
    INTERNAL,
    UNRESOLVED,
    Allowlist,
    DestinationRefused,
    allowlist_from,
    check_destination,
)
from .sign import signature

log = logging.getLogger("mailgate.webhooks")
TIMEOUT_SECONDS = 10.0
LEASE = timedelta(seconds=300)
TEMPORARY, PERMANENT, SENT = "temporary", "permanent", "sent"
RETRIED_CLIENT_ERRORS = (408, 429)
USER_AGENT = "mailgate-webhooks/1"


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0


@dataclass(frozen=True)
class Outcome:
    kind: str  # SENT | TEMPORARY | PERMANENT
    detail: str = ""  # a class of :mod:`.failures`: stored and shown
    log_detail: str = ""  # the raw error, for the server log only

    @property
    def logged(self) -> str:
        """What the log says: the class, and the raw error for the operator if there is one."""
        return f"{self.detail} ({self.log_detail})" if self.log_detail else self.detail


def classify(status: int) -> str:
    """What an HTTP status means for the delivery."""
    if 200 <= status < 300:
        return SENT
    if status in RETRIED_CLIENT_ERRORS or status >= 500:
        return TEMPORARY
    return PERMANENT


def _refusal(exc: DestinationRefused) -> Outcome:
    """A URL the guard refuses now: permanent (the admin must change it), except a name
    that does not resolve at the moment, which may come back."""
    if exc.code == UNRESOLVED:
        return Outcome(TEMPORARY, failures.NOT_RESOLVED, str(exc))
    if exc.code == INTERNAL:
        return Outcome(PERMANENT, failures.NOT_ALLOWED, str(exc))
    return Outcome(PERMANENT, failures.INVALID_URL, str(exc))


def post(
    url: str,
    secret: str,
    row: WebhookDelivery,
    timeout: float,
    allowlist: Allowlist = EMPTY_ALLOWLIST,
) -> Outcome:
    """One signed POST to a checked, pinned destination; never raises for network or HTTP
    trouble.  The destination is checked again here, at every attempt: DNS may have
    changed since the admin saved the URL."""
    try:
        target = check_destination(url, allowlist)
    except DestinationRefused as exc:
        return _refusal(exc)
    body = json.dumps(row.payload, separators=(",", ":"), sort_keys=True).encode()
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Mailgate-Event": row.event,
        "X-Mailgate-Delivery": row.idempotency_key,
        "X-Mailgate-Timestamp": str(stamp),
        "X-Mailgate-Signature": signature(secret, stamp, body),
    }
    try:
        status = transport.post(target, body, headers, timeout)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return Outcome(TEMPORARY, failures.error_class(exc), f"{type(exc).__name__}: {exc}")
    return Outcome(classify(status), failures.http_status(status))  # 3xx: permanent


@dataclass
class _Pass:
    factory: sessionmaker[Session]
    settings: Settings
    dealer: DealerConfig
    me: str
    start: datetime
    started: float
    report: DeliveryReport

    def clock(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started)


def deliver_pass(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 50,
    timeout: float = TIMEOUT_SECONDS,
) -> DeliveryReport:
    """Deliver every due webhook event once; returns what happened."""
    start = now or utcnow()
    owner = f"webhooks:{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    owner = f"{owner}:{random.getrandbits(32):08x}"[:255]  # nosec B311  # lease tag, not a secret
    with factory() as session:
        rows = claim_due(
            session,
            owner,
            start,
            limit=limit,
            lease_seconds=int(LEASE.total_seconds()),
            model=WebhookDelivery,
        )
        if not rows:
            return DeliveryReport()
        dealer = load_dealer_config(session)
        hooks = {h.id: (h.url, h.secret) for h in session.query(Webhook).all()}
        session.commit()
    state = _Pass(factory, settings, dealer, owner, start, time.monotonic(), DeliveryReport())
    allowlist = allowlist_from(tuple(settings.webhooks.allow_private))
    for row in rows:
        try:
            with factory() as session:
                if not renew_claim(
                    session, row.id, owner, state.clock() + LEASE, model=WebhookDelivery
                ):
                    continue
            hook = hooks.get(row.webhook_id)
            if hook is None:
                outcome = Outcome(PERMANENT, failures.DELETED)
            else:
                outcome = post(hook[0], hook[1], row, timeout, allowlist)
            _record(state, row, outcome, hook[0] if hook else "")
        except Exception:  # one broken row must not stop the others
            log.exception("webhook delivery %s: unexpected error; retried later", row.id)
    return state.report


def _record(state: _Pass, row: WebhookDelivery, outcome: Outcome, url: str) -> None:
    attempts = row.attempts + 1
    sender = state.settings.sender
    if outcome.kind == SENT:
        if _settle(state, row, status=WebhookStatus.SENT, attempts=attempts, sent_at=state.clock()):
            state.report.sent += 1
    elif outcome.kind == TEMPORARY and attempts < sender.max_attempts:
        delay = retry_delay(sender, attempts)
        due = state.clock() + timedelta(seconds=delay)
        if _settle(
            state,
            row,
            status=WebhookStatus.PENDING,
            attempts=attempts,
            last_error=outcome.detail,
            next_attempt_at=due,
        ):
            state.report.retried += 1
        log.warning("webhook delivery %s: %s; retry in %.0f s", row.id, outcome.logged, delay)
    else:
        reason = outcome.detail
        if outcome.kind == TEMPORARY:
            reason = f"gave up after {attempts} attempts: {outcome.detail}"
        notice = _failure_notice(state.dealer, row, url, reason)
        if _settle(
            state,
            row,
            notice,
            status=WebhookStatus.DEAD,
            attempts=attempts,
            last_error=outcome.detail,
        ):
            state.report.dead += 1
        log.error("webhook delivery %s is dead (attempt %s): %s", row.id, attempts, outcome.logged)


def notice_key(row: WebhookDelivery) -> str:
    return f"{FAILURE_PURPOSE}:webhook:{row.id}"


def _failure_notice(
    dealer: DealerConfig, row: WebhookDelivery, url: str, reason: str
) -> ComposedMail | None:
    """The admin's ``delivery_failure`` mail, as for a dead mail (None without an admin)."""
    if not dealer.admin_address:
        return None
    failed = {
        "id": row.id,
        "purpose": f"webhook {row.event}",
        "recipients": [url],
        "subject": f"{row.event} lead {row.lead_id}",
        "error": reason,
    }
    try:
        return compose_template(
            dealer,
            key=notice_key(row),
            template=FAILURE_PURPOSE,
            language=dealer.language,
            context={"failed": failed},
            to=[("", dealer.admin_address)],
        )
    except Exception:  # noqa: BLE001 - the notice is best effort, the dead mark is not
        log.exception("webhook delivery %s: cannot compose the failure notice", row.id)
        return None


def _settle(
    state: _Pass, row: WebhookDelivery, notice: ComposedMail | None = None, **values: object
) -> bool:
    """Release our claim with the outcome (and the admin notice, atomically)."""
    with state.factory() as session:
        changed = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == row.id,
                WebhookDelivery.claimed_by == state.me,
                WebhookDelivery.status == WebhookStatus.SENDING,
            )
            .values(claimed_by=None, lease_until=None, **values)
        ).rowcount
        if changed and notice is not None:
            enqueue_composed(
                session, notice, key=notice_key(row), purpose=FAILURE_PURPOSE, lead_id=row.lead_id
            )
        session.commit()
    return bool(changed)


def run_webhook_sender(
    factory: sessionmaker[Session], settings: Settings, stop: threading.Event
) -> None:
    """Deliver due webhook events every ``sender.poll_interval`` seconds until ``stop``."""
    log.info("webhook sender started")
    while not stop.is_set():
        try:
            report = deliver_pass(factory, settings)
            if report.sent or report.retried or report.dead:
                log.info("webhook pass: %s", report)
        except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
            log.exception("webhook pass failed; next try in %s s", settings.sender.poll_interval)
        stop.wait(settings.sender.poll_interval)
    log.info("webhook sender stopped")
