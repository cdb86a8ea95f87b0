"""The escalation scheduler: one pass over the leads whose next step is due.

I/O at the edge of the pure ladder (:func:`~mailgate.escalation.ladder.advance`):

- Leads are found by the indexed ``next_due_at``; each is moved on by
  compare-and-set on ``escalation_stage`` (``UPDATE .. WHERE stage = old``), so
  two schedulers over one database never act on the same rung twice; on
  PostgreSQL the batch is claimed with ``FOR UPDATE SKIP LOCKED`` so they do not
  even wait for each other.
- Every mail is enqueued in the same transaction as the stage change, with an
  idempotency key (purpose, lead, assignee, ladder start): the outbox refuses a
  second copy even if everything else went wrong.
- Staff mails leave only while the dealer is open.  The scheduler simply does
  nothing while the dealer is closed: due leads stay due, and the first pass
  after opening time catches up, skipping reminders that stage 1 made stale.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import DealerConfig, load_dealer_config
from mailgate.models import Customer, Lead, LeadStatus, ProtocolEntry, User, utcnow
from mailgate.outbound.compose import make_message_id
from mailgate.outbound.outbox import enqueue_template

from .ladder import advance

log = logging.getLogger("mailgate.escalation")
BATCH = 200
OPEN_STATUSES = (LeadStatus.NEW.value, LeadStatus.ASSIGNED.value)
PURPOSE_TEMPLATES = {"reminder": "reminder", "stage1": "stage1", "stage2": "stage2"}


@dataclass
class TickReport:
    """What one pass did; ``closed`` means the dealer was closed and nothing was due to leave."""

    examined: int = 0
    mails: Counter[str] = field(default_factory=Counter)
    closed: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"examined": self.examined, "mails": dict(self.mails), "closed": self.closed}


def tick(factory: sessionmaker[Session], *, now: datetime | None = None) -> TickReport:
    """Advance every due lead one or more rungs; returns what was done."""
    now = now or utcnow()
    report = TickReport()
    with session_scope(factory) as session:
        dealer = load_dealer_config(session)
    if not dealer.calendar.is_open(now):
        report.closed = True
        return report
    while True:
        with session_scope(factory) as session:
            done = _advance_batch(session, dealer, now, report)
        if done < BATCH:
            return report


def run_scheduler(
    factory: sessionmaker[Session], stop: threading.Event, interval: float = 30.0
) -> None:
    """``tick`` every ``interval`` seconds until ``stop``; a failing pass is logged, not fatal."""
    while not stop.is_set():
        try:
            report = tick(factory)
            if report.mails:
                log.info("escalation pass: %s", report.as_dict())
        except Exception:  # noqa: BLE001 - a database hiccup must not end escalation for good
            log.exception("escalation pass failed; retrying in %.0f s", interval)
        stop.wait(interval)


def _advance_batch(
    session: Session, dealer: DealerConfig, now: datetime, report: TickReport
) -> int:
    query = (
        select(Lead, Customer, User)
        .join(User, User.id == Lead.assignee_id)
        .outerjoin(Customer, Customer.id == Lead.customer_id)
        .where(
            Lead.next_due_at <= now,
            Lead.status.in_(OPEN_STATUSES),
            Lead.first_response_at.is_(None),
        )
        .order_by(Lead.next_due_at)
        .limit(BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Lead.__table__, skip_locked=True)
    rows = session.execute(query).all()
    for lead, customer, assignee in rows:
        report.examined += 1
        if lead.soon_at is None or lead.overdue_at is None:
            continue
        progress = advance(
            lead.escalation_stage, now, lead.soon_at, lead.overdue_at, lead.stage2_at
        )
        moved = session.execute(
            update(Lead.__table__)
            .where(
                and_(
                    Lead.__table__.c.id == lead.id,
                    Lead.__table__.c.escalation_stage == lead.escalation_stage,
                )
            )
            .values(escalation_stage=progress.stage, next_due_at=progress.next_due_at)
        )
        if moved.rowcount != 1:
            continue  # another scheduler moved it first
        for purpose in progress.purposes:
            if _enqueue(session, dealer, purpose, lead, customer, assignee, now):
                report.mails[purpose] += 1
    return len(rows)


def _enqueue(
    session: Session,
    dealer: DealerConfig,
    purpose: str,
    lead: Lead,
    customer: Customer | None,
    assignee: User,
    now: datetime,
) -> bool:
    recipient = assignee
    if purpose == "stage2":
        recipient = _supervisor(session, assignee, dealer)
        if recipient is None:
            _protocol(session, lead, "escalation", "stage 2 due, but nobody to tell: no supervisor")
            return False
    assert lead.overdue_at is not None
    ladder_start = int(lead.overdue_at.timestamp())
    key = f"{purpose}:{lead.id}:{assignee.id}:{ladder_start}"
    domain = dealer.sender_address.rpartition("@")[2]
    notification = make_message_id(f"notification:{lead.id}:{assignee.id}", domain)
    waiting = now - lead.received_at
    context = {
        "lead": {
            "id": lead.id,
            "source": lead.source,
            "kind": lead.kind,
            "received_at": _local(lead.received_at, dealer),
            "url": _lead_url(dealer, lead.id),
        },
        "customer": {
            "name": customer.name if customer else "",
            "email": customer.email if customer else "",
            "phone": customer.phone if customer else "",
        },
        "assignee": {"name": assignee.name, "email": assignee.email},
        "supervisor": {"name": recipient.name, "email": recipient.email},
        "due_at": _local(lead.overdue_at, dealer),
        "stage2_at": _local(lead.stage2_at, dealer) if lead.stage2_at else "",
        "waiting": _duration_text(waiting, recipient.language or dealer.language),
    }
    queued = enqueue_template(
        session,
        dealer,
        key=key,
        purpose=purpose,
        template=PURPOSE_TEMPLATES[purpose],
        language=recipient.language or dealer.language,
        context=context,
        to=[(recipient.name, recipient.email)],
        lead_id=lead.id,
        in_reply_to=notification,
        references=[notification],
        send_after=now,
    )
    if queued:
        _protocol(session, lead, purpose, f"{purpose} to {recipient.email} queued")
    return queued


def _supervisor(session: Session, assignee: User, dealer: DealerConfig) -> User | None:
    """The assignee's supervisor; without one, the admin address stands in."""
    if assignee.supervisor_email:
        boss = session.scalar(select(User).where(User.email == assignee.supervisor_email.lower()))
        if boss is not None and boss.active:
            return boss
    if dealer.admin_address:
        return User(email=dealer.admin_address, name="", language=dealer.language)
    return None


def _protocol(session: Session, lead: Lead, action: str, detail: str) -> None:
    session.execute(
        ProtocolEntry.__table__.insert(),
        {"lead_id": lead.id, "at": utcnow(), "actor": "system", "action": action, "detail": detail},
    )


def _local(value: datetime, dealer: DealerConfig) -> str:
    return value.astimezone(dealer.timezone).strftime("%d.%m.%Y %H:%M")


def _lead_url(dealer: DealerConfig, lead_id: int) -> str:
    base = dealer.base_url.rstrip("/")
    return f"{base}/leads/{lead_id}" if base else ""


def _duration_text(elapsed: timedelta, language: str) -> str:
    """``1 Tag 3 Std.`` / ``1 day 3 h``: how long the customer has waited, for humans."""
    hours = max(0, int(elapsed.total_seconds() // 3600))
    days, hours = divmod(hours, 24)
    if language == "en":
        parts = ([f"{days} day{'s' if days != 1 else ''}"] if days else []) + [f"{hours} h"]
    else:
        parts = ([f"{days} {'Tag' if days == 1 else 'Tage'}"] if days else []) + [f"{hours} Std."]
    return " ".join(parts)
