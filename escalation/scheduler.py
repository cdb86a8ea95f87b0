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
- Staff mails leave only while the dealer is open (seed 002: "Informations
  E-Mails an Nutzer / Vorgesetzte werden nur innerhalb der eingetragenen
  Öffnungszeiten versendet").  While closed the scheduler sends nothing, except
  in the first minutes after a closing time what was due by that closing time
  (a deadline "by 13:00" on Saturday is mailed at 13:00, not on Monday); the
  first pass after opening catches up, skipping reminders stage 1 made stale.
- Stage 2 counts from the moment the stage-1 mail left (ladder.restarted_stage2),
  so the salesperson always has the whole stage-2 period before the supervisor.
- A qualification's processing target (seed 004) is mailed to the assignee once
  when it passes with the lead still open.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, false, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import DealerConfig, load_dealer_config
from mailgate.labels import kind_label, source_label, waiting_for
from mailgate.models import OPEN_STATUSES, Customer, Lead, OutboxMail, ProtocolEntry, User, utcnow
from mailgate.outbound.outbox import DeferredMail, enqueue_deferred
from mailgate.protocol import Phrase, phrase
from mailgate.protocol import row as protocol_row
from mailgate.signed_links import action_links, link_secret
from mailgate.webhooks.emit import emit

from .ladder import RESUBMISSION, Progress, advance, staff_window
from .replies import notification_reply_to

log = logging.getLogger("mailgate.escalation")
BATCH = 500
LINKED_PURPOSES = ("reminder", "stage1")  # mails to the assignee that carry action links
SUPERVISOR_ACTIONS = ("take_over", "reassign")  # links in the stage-2 mail to the supervisor
PURPOSE_TEMPLATES = {
    "reminder": "reminder",
    "stage1": "stage1",
    "stage2": "stage2",
    "resubmission": "resubmission",
    "target_missed": "target_missed",
}


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
    window = send_window(dealer, now)
    report.closed = window.ladder != now
    if window.ladder is None and window.resubmission is None:
        return report
    while True:
        with session_scope(factory) as session:
            done = _advance_batch(session, dealer, now, report, window)
        if done < BATCH:
            break
    if window.ladder is not None:
        while True:
            with session_scope(factory) as session:
                done = _target_batch(session, dealer, now, window.ladder, report)
            if done < BATCH:
                break
    return report


@dataclass(frozen=True)
class Window:
    """Up to which due time staff mails may leave now (None: none may)."""

    ladder: datetime | None
    resubmission: datetime | None


def send_window(dealer: DealerConfig, now: datetime) -> Window:
    """The ladder's window (:func:`~mailgate.escalation.ladder.staff_window`); resubmissions
    leave at any hour unless *respect working hours for resubmissions* is on."""
    ladder = staff_window(dealer.calendar, now)
    if dealer.document["escalation"]["respect_hours_for_resubmissions"]:
        return Window(ladder, ladder)
    return Window(ladder, now)


def run_scheduler(
    factory: sessionmaker[Session], stop: threading.Event, interval: float = 30.0
) -> None:
    """``tick`` every ``interval`` seconds until ``stop``; a failing pass is logged, not fatal.

    Passes *start* ``interval`` apart (a long pass is followed at once by the next):
    a reminder due just after a pass starts is picked up by the next one, at most
    ``interval`` later, however long the passes take.
    """
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = tick(factory)
            if report.mails:
                log.info("escalation pass: %s", report.as_dict())
        except Exception:  # noqa: BLE001 - a database hiccup must not end escalation for good
            log.exception("escalation pass failed; retrying in %.0f s", interval)
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def _advance_batch(
    session: Session,
    dealer: DealerConfig,
    now: datetime,
    report: TickReport,
    window: Window,
) -> int:
    lead, customer = Lead.__table__.c, Customer.__table__.c
    first_ladder = (
        and_(
            lead.escalation_stage < RESUBMISSION,
            lead.first_response_at.is_(None),  # the first ladder stops at the first answer
            lead.next_due_at <= window.ladder,
        )
        if window.ladder is not None
        else false()
    )
    resubmissions = (
        and_(lead.escalation_stage >= RESUBMISSION, lead.next_due_at <= window.resubmission)
        if window.resubmission is not None
        else false()
    )
    query = (
        select(
            *_mail_columns(),
            lead.escalation_stage,
            lead.soon_at,
            lead.overdue_at,
            lead.stage2_at,
        )
        .outerjoin(Customer.__table__, customer.id == lead.customer_id)
        .where(
            lead.next_due_at <= now,
            lead.status.in_(OPEN_STATUSES),
            lead.assignee_id.is_not(None),
            or_(first_ladder, resubmissions),
        )
        .order_by(lead.next_due_at)
        .limit(BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Lead.__table__, skip_locked=True)
    rows = session.execute(query).all()
    if not rows:
        return 0
    users = _users(session)
    secret = link_secret(session) if dealer.base_url else ""
    mails: list[DeferredMail] = []
    protocol: list[dict[str, object]] = []
    steps = [
        (row, advance(row.escalation_stage, now, row.soon_at, row.overdue_at, row.stage2_at))
        for row in rows
    ]
    _compare_and_set(session, steps)
    threads = _notification_ids(session, rows)
    for row, progress in steps:
        report.examined += 1
        assignee = users.get(row.assignee_id)
        thread = threads.get(f"notification:{row.id}:{row.assignee_id}")
        for purpose in progress.purposes:
            mail, what = _mail(
                dealer, users, purpose, row, assignee, now, secret, thread, progress.stage2_at
            )
            if mail is not None:
                mails.append(mail)
                report.mails[purpose] += 1
            protocol.append(protocol_row(row.id, now, "system", purpose, [what]))
            if purpose in ("stage1", "stage2"):
                emit(session, "lead.escalated", row.id, {"stage": purpose}, key=f"{purpose}:{now}")
    enqueue_deferred(session, dealer, mails)
    if protocol:
        session.execute(ProtocolEntry.__table__.insert(), protocol)
    return len(rows)


def _target_batch(
    session: Session, dealer: DealerConfig, now: datetime, due_by: datetime, report: TickReport
) -> int:
    """Mail the assignee once about every processing target (seed 004) that passed.

    Seed 004: "Heiß (sehr wichtiger Lead → rasche Leadbearbeitung innerhalb von
    2 Arbeitstagen)": a lead still open at its target was not processed in time.
    Claimed by compare-and-set on ``target_mailed_at``, so it is mailed once.
    """
    lead, customer = Lead.__table__.c, Customer.__table__.c
    query = (
        select(*_mail_columns(), lead.target_at, lead.qualification)
        .outerjoin(Customer.__table__, customer.id == lead.customer_id)
        .where(
            lead.target_at <= due_by,
            lead.target_mailed_at.is_(None),
            lead.status.in_(OPEN_STATUSES),
            lead.assignee_id.is_not(None),
            lead.handed_over_at.is_(None),
        )
        .order_by(lead.target_at)
        .limit(BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Lead.__table__, skip_locked=True)
    rows = session.execute(query).all()
    if not rows:
        return 0
    moved = session.execute(_TARGET_CAS, [{"b_id": row.id, "b_now": now} for row in rows]).rowcount
    if moved != len(rows):
        raise LostRace(f"{len(rows) - moved} of {len(rows)} targets mailed by someone else")
    users = _users(session)
    mails: list[DeferredMail] = []
    protocol: list[dict[str, object]] = []
    for row in rows:
        assignee = users.get(row.assignee_id)
        if assignee is None:
            what = phrase("rung_no_assignee", purpose="target_missed")
        else:
            mails.append(_target_mail(dealer, row, assignee, now))
            report.mails["target_missed"] += 1
            what = phrase("target_missed_queued", target_at=row.target_at, to=assignee.email)
        protocol.append(
            protocol_row(row.id, now, "system", "target_missed", [what], dealer.timezone)
        )
    enqueue_deferred(session, dealer, mails)
    session.execute(ProtocolEntry.__table__.insert(), protocol)
    return len(rows)


_TARGET_CAS = (
    update(Lead.__table__)
    .where(Lead.__table__.c.id == bindparam("b_id"), Lead.__table__.c.target_mailed_at.is_(None))
    .values(target_mailed_at=bindparam("b_now"))
)


def _target_mail(
    dealer: DealerConfig, row: Row[Any], assignee: _Person, now: datetime
) -> DeferredMail:
    """The "processing target missed" mail to the assignee (German by default)."""
    language = assignee.language or dealer.language
    context = {
        "lead": {
            "id": row.id,
            "source": row.source,
            "kind": row.kind,
            "source_label": source_label(row.source, language),
            "kind_label": kind_label(row.kind, language),
            "vehicle": {k: (row.vehicle or {}).get(k) for k in ("make", "model")},
            "message": excerpt(row.message),
            "received_at": _local(row.received_at, dealer),
            "url": _lead_url(dealer, row.id),
        },
        "customer": {
            "name": row.customer_name or "",
            "email": row.customer_email or "",
            "phone": row.customer_phone or "",
        },
        "assignee": {"name": assignee.name, "email": assignee.email},
        "qualification": _qualification_word(row.qualification, language),
        "target_at": _local(row.target_at, dealer),
        "reply_reaches_customer": bool(_reply_to(dealer, row) and row.customer_email),
    }
    return DeferredMail(
        key=f"target_missed:{row.id}:{assignee.id}:{int(row.target_at.timestamp())}",
        purpose="target_missed",
        template=PURPOSE_TEMPLATES["target_missed"],
        language=language,
        context=context,
        to=[(assignee.name, assignee.email)],
        reply_to=_reply_to(dealer, row, assignee.id),
        lead_id=row.id,
        send_after=now,
    )


QUALIFICATION_WORDS = {"hot": ("heiß", "hot"), "warm": ("warm", "warm"), "cold": ("kalt", "cold")}


def _qualification_word(code: str | None, language: str) -> str:
    words = QUALIFICATION_WORDS.get(code or "")
    if words is None:
        return ""
    return words[1] if language.lower().startswith("en") else words[0]


def _notification_ids(session: Session, rows: Sequence[Row[Any]]) -> dict[str, str]:
    """The Message-IDs of the batch's notifications, by idempotency key (one query).

    Reminders thread under the notification (In-Reply-To); its id is random
    (:func:`mailgate.outbound.compose.new_message_id`), so it is read back,
    not recomputed.
    """
    keys = [f"notification:{row.id}:{row.assignee_id}" for row in rows if row.assignee_id]
    if not keys:
        return {}
    found = session.execute(
        select(OutboxMail.idempotency_key, OutboxMail.message_id).where(
            OutboxMail.idempotency_key.in_(keys)
        )
    )
    return {key: message_id for key, message_id in found if message_id}


class LostRace(RuntimeError):
    """A claimed lead changed under us: the whole batch is rolled back and retried."""


def _compare_and_set(session: Session, steps: list[tuple[Row[Any], Progress]]) -> None:
    """Move every lead of the batch to its new stage, or none of them.

    One executemany (pipelined by psycopg, one statement loop in SQLite)
    instead of a round trip per lead.  The claimed rows are locked (``FOR
    UPDATE`` on PostgreSQL, the write lock on SQLite), so every compare must
    succeed; if one does not, something bypassed the lock, and the batch is
    rolled back rather than risking a mail for a rung another process took.
    """
    params = [
        {
            "b_id": row.id,
            "b_old": row.escalation_stage,
            "b_stage": p.stage,
            "b_next": p.next_due_at,
            "b_stage2": p.stage2_at,
        }
        for row, p in steps
    ]
    moved = session.execute(_CAS, params).rowcount
    if moved != len(params):
        raise LostRace(f"{len(params) - moved} of {len(params)} leads moved by someone else")


_CAS = (
    update(Lead.__table__)
    .where(
        Lead.__table__.c.id == bindparam("b_id"),
        Lead.__table__.c.escalation_stage == bindparam("b_old"),
    )
    .values(
        escalation_stage=bindparam("b_stage"),
        next_due_at=bindparam("b_next"),
        stage2_at=bindparam("b_stage2"),
    )
)


@dataclass(frozen=True)
class _Person:
    id: int | None
    email: str
    name: str
    language: str
    supervisor_email: str | None


def _users(session: Session) -> dict[int | str, _Person]:
    """Active users by id and by e-mail: one query per batch instead of one per lead."""
    found: dict[int | str, _Person] = {}
    for user in session.execute(
        select(User.id, User.email, User.name, User.language, User.supervisor_email).where(
            User.active
        )
    ):
        person = _Person(user.id, user.email, user.name, user.language, user.supervisor_email)
        found[user.id] = person
        found[user.email.lower()] = person
    return found


def _mail(  # nosec B107  # '' means no signing secret configured, not a password
    dealer: DealerConfig,
    users: dict[int | str, _Person],
    purpose: str,
    row: Row[Any],
    assignee: _Person | None,
    now: datetime,
    secret: str = "",
    notification: str | None = None,
    stage2_at: datetime | None = None,
) -> tuple[DeferredMail | None, Phrase]:
    """The deferred mail for one rung, and the protocol line that explains it."""
    if assignee is None:
        return None, phrase("rung_no_assignee", purpose=purpose)
    recipient = assignee
    if purpose == "stage2":
        boss = users.get((assignee.supervisor_email or "").lower())
        if boss is None and dealer.admin_address:
            boss = _Person(None, dealer.admin_address, "", dealer.language, None)
        if boss is None:
            return None, phrase("stage2_nobody")
        recipient = boss
    language = recipient.language or dealer.language
    # the assignee's own mails carry his token (bound to the lead and him); a supervisor's
    # carries the lead's, which any user who may act on the lead can answer with
    reply_to = _reply_to(dealer, row, recipient.id if recipient is assignee else None)
    context = {
        "lead": {
            "id": row.id,
            "source": row.source,
            "kind": row.kind,
            "source_label": source_label(row.source, language),
            "kind_label": kind_label(row.kind, language),
            # what the lead is about, so the mail can be answered without opening the lead
            "vehicle": {k: (row.vehicle or {}).get(k) for k in ("make", "model")},
            "message": excerpt(row.message),
            "received_at": _local(row.received_at, dealer),
            "url": _lead_url(dealer, row.id),
        },
        "customer": {
            "name": row.customer_name or "",
            "email": row.customer_email or "",
            "phone": row.customer_phone or "",
        },
        "assignee": {"name": assignee.name, "email": assignee.email},
        "supervisor": {"name": recipient.name, "email": recipient.email},
        "due_at": _local(row.overdue_at, dealer),
        # stage 2 as moved by this pass (it counts from the stage-1 mail)
        "stage2_at": _local(stage2_at or row.stage2_at, dealer)
        if (stage2_at or row.stage2_at)
        else "",
        "waiting": waiting_for(now - row.received_at, language),
        "actions": _actions(
            dealer, secret, purpose, recipient if purpose == "stage2" else assignee, row.id, now
        ),
        "reply_reaches_customer": bool(reply_to and row.customer_email),
    }
    mail = DeferredMail(
        key=f"{purpose}:{row.id}:{assignee.id}:{int(row.overdue_at.timestamp())}",
        purpose=purpose,
        template=PURPOSE_TEMPLATES[purpose],
        language=language,
        context=context,
        to=[(recipient.name, recipient.email)],
        reply_to=reply_to,
        lead_id=row.id,
        in_reply_to=notification,
        references=[notification] if notification else [],
        send_after=now,
    )
    return mail, phrase("rung_queued", purpose=purpose, to=recipient.email)


def _actions(
    dealer: DealerConfig, secret: str, purpose: str, assignee: _Person, lead_id: int, now: datetime
) -> dict[str, str]:
    """Signed links: "contacted" / "resubmit" in the assignee's reminder and stage-1 mail,
    "take over" / "reassign" in the supervisor's stage-2 mail (``assignee``: its recipient)."""
    linked = purpose in LINKED_PURPOSES or purpose == "stage2"
    if not linked or not secret or assignee.id is None:
        return {}
    return action_links(
        secret,
        dealer.base_url,
        user_id=assignee.id,
        lead_id=lead_id,
        actions=SUPERVISOR_ACTIONS if purpose == "stage2" else ("contacted", "resubmit"),
        valid_from=now,
    )


def _local(value: datetime, dealer: DealerConfig) -> str:
    return value.astimezone(dealer.timezone).strftime("%d.%m.%Y %H:%M")


def _lead_url(dealer: DealerConfig, lead_id: int) -> str:
    base = dealer.base_url.rstrip("/")
    return f"{base}/leads/{lead_id}" if base else ""


EXCERPT_CHARS = 300


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The customer's message on one line, cut at a word near ``limit`` with an ellipsis."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit].rstrip() + " …"


def _mail_columns() -> tuple[Any, ...]:
    """The lead and customer columns every staff mail about a lead is written from."""
    lead, customer = Lead.__table__.c, Customer.__table__.c
    return (
        lead.id,
        lead.source,
        lead.kind,
        lead.assignee_id,
        lead.reply_token,
        lead.vehicle,
        lead.message,
        lead.received_at,
        customer.name.label("customer_name"),
        customer.email.label("customer_email"),
        customer.phone.label("customer_phone"),
    )


def _reply_to(
    dealer: DealerConfig, row: Row[Any], user_id: int | None = None
) -> list[tuple[str, str]]:
    """The lead's tracking address: answering a reminder or escalation reaches the customer.

    Only the tracking address, whatever ``reply_mode``: whichever ladder mail
    the salesperson (or the supervisor) answers, the answer comes to us,
    counts, and is relayed under the conversation's subject — a Reply-To
    naming the customer (``cc`` mode) would send "AW: Überfällig: …" straight
    to him.  Without a customer address there is nobody to answer.  ``user_id``: the
    recipient when he is the assignee (his token, :mod:`.authenticity`).
    """
    if not row.reply_token or not row.customer_email:
        return []
    return notification_reply_to(
        "relay",
        dealer.sender_address,
        row.id,
        row.reply_token,
        row.customer_name,
        row.customer_email,
        user_id=user_id,
    )
