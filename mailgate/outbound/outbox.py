"""The outbox table: mails are enqueued in the caller's transaction, sent later.

Stages and services never talk SMTP; they add an :class:`OutboxMail` row in the
same transaction as the state change it belongs to, so a notification exists
if and only if its lead does.  The unique idempotency key (lead, purpose,
stage…) makes enqueueing the same mail twice a no-op.  The sender claims due
rows by compare-and-set with a lease, so two senders never send one row twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import OutboxMail, OutboxStatus, utcnow
from mailgate.outbound.compose import (
    Attachment,
    build_message,
    check_address,
    new_message_id,
    render_mail,
)
from mailgate.outbound.hygiene import CUSTOMER_PURPOSES, scrub_html, scrub_text

log = logging.getLogger("mailgate.outbound")
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
MAX_KEY_LENGTH = 255  # OutboxMail.idempotency_key; PostgreSQL would reject longer


@dataclass(frozen=True)
class ComposedMail:
    """A rendered, serialised mail plus the envelope the sender needs."""

    mail_from: str
    recipients: list[str]
    subject: str
    message_id: str
    raw: bytes


def enqueue(
    session: Session,
    *,
    key: str,
    purpose: str,
    mail_from: str,
    recipients: Sequence[str],
    raw: bytes,
    subject: str,
    message_id: str,
    lead_id: int | None = None,
    send_after: datetime | None = None,
) -> bool:
    """Insert one outbox row unless the key exists; returns whether it was inserted.

    Runs in the caller's transaction and does not commit.  ``ON CONFLICT DO
    NOTHING`` instead of catching IntegrityError: a failed INSERT would abort
    (PostgreSQL) or roll back the caller's whole transaction, lead included.
    Everything that could make the INSERT itself fail is checked first, as
    ValueError, for the same reason.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency key must be 1..{MAX_KEY_LENGTH} characters: {key!r}")
    if not recipients:
        raise ValueError("an outbox mail needs at least one recipient")
    # Envelope addresses go into SMTP commands verbatim: same checks as headers.
    envelope_from = check_address(mail_from)
    envelope_to = [check_address(rcpt) for rcpt in recipients]
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS:
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    now = utcnow()
    due = send_after or now
    row = {
        "idempotency_key": key,
        "purpose": purpose[:64],
        "lead_id": lead_id,
        "mail_from": envelope_from,
        "recipients": envelope_to,
        "subject": subject[:998],
        "message_id": message_id[:998],
        "raw": raw,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "send_after": due,
        "next_attempt_at": due,
    }
    return session.execute(_insert_statement(dialect), row).scalar() is not None


@cache
def _insert_statement(dialect: str) -> Any:
    """The INSERT .. ON CONFLICT DO NOTHING RETURNING id, built once per dialect.

    Values travel as bind parameters instead of ``.values()``: building and
    cache-keying a new statement per mail cost more than executing it.
    """
    return (
        _INSERTS[dialect](OutboxMail.__table__)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        # RETURNING, not rowcount: psycopg reports -1 here, which is truthy.
        .returning(OutboxMail.__table__.c.id)
    )


def compose_template(
    dealer: DealerConfig,
    *,
    key: str,
    template: str,
    language: str,
    context: Mapping[str, Any],
    to: Sequence[tuple[str, str]],
    reply_to: Sequence[tuple[str, str]] = (),
    attachments: Sequence[Attachment] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    override_dir: Path | None = None,
    from_name: str | None = None,
    automatic: bool = True,
    message_id: str | None = None,
    purpose: str = "",
) -> ComposedMail:
    """Render and serialise a templated mail from the dealership; no database.

    Kept apart from :func:`enqueue_template` so the sender can compose an
    admin notice *before* opening the transaction that marks a mail dead.
    ``message_id``: the id chosen at enqueue time (a deferred row's), else a
    new random one.  ``purpose``: what the mail is for (the outbox row's
    purpose); a mail to a customer (:data:`.hygiene.CUSTOMER_PURPOSES`) has every
    mailgate link removed from its rendered subject, text and HTML — the last
    filter, decided here from the purpose rather than by a flag each caller must
    remember, whatever the template or the relayed text contained.
    """
    rendered = render_mail(
        template,
        language,
        {**context, "dealer_name": dealer.name},
        override_dir or dealer.template_dir,
    )
    subject, text, html = rendered.subject, rendered.text, rendered.html
    if purpose in CUSTOMER_PURPOSES:
        subject = scrub_text(subject, dealer.base_url)
        text = scrub_text(text, dealer.base_url)
        html = scrub_html(html, dealer.base_url)
    sender = dealer.sender_address
    message_id = message_id or new_message_id(sender.rpartition("@")[2])
    raw = build_message(
        from_name=from_name or dealer.from_name,
        from_address=sender,
        to=to,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        reply_to=_usable(reply_to, key),
        in_reply_to=in_reply_to,
        references=references,
        attachments=attachments,
        automatic=automatic,
    )
    return ComposedMail(sender, [addr for _, addr in to], subject, message_id, raw)


def _usable(reply_to: Sequence[tuple[str, str]], key: str) -> list[tuple[str, str]]:
    """Drop Reply-To addresses we cannot put in a header.

    Reply-To usually carries the customer's address as parsed from a portal
    mail; a malformed one must not cost the salesperson the notification.
    """
    usable = []
    for name, addr in reply_to:
        try:
            check_address(addr)
        except ValueError:
            log.warning("outbox %s: dropping unusable Reply-To %r", key, addr)
            continue
        usable.append((name, addr))
    return usable


def enqueue_template(
    session: Session,
    dealer: DealerConfig,
    *,
    key: str,
    purpose: str,
    template: str,
    language: str,
    context: Mapping[str, Any],
    to: Sequence[tuple[str, str]],
    lead_id: int | None = None,
    reply_to: Sequence[tuple[str, str]] = (),
    attachments: Sequence[Attachment] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    send_after: datetime | None = None,
    override_dir: Path | None = None,
) -> bool:
    """Render a template trio and enqueue the composed mail (no commit)."""
    if session.scalar(select(OutboxMail.id).where(OutboxMail.idempotency_key == key)):
        return False  # already queued: do not even render
    mail = compose_template(
        dealer,
        key=key,
        template=template,
        language=language,
        context=context,
        to=to,
        reply_to=reply_to,
        attachments=attachments,
        in_reply_to=in_reply_to,
        references=references,
        override_dir=override_dir,
        purpose=purpose,
    )
    return enqueue_composed(
        session, mail, key=key, purpose=purpose, lead_id=lead_id, send_after=send_after
    )


def enqueue_composed(
    session: Session,
    mail: ComposedMail,
    *,
    key: str,
    purpose: str,
    lead_id: int | None = None,
    send_after: datetime | None = None,
) -> bool:
    """:func:`enqueue` for a :class:`ComposedMail`."""
    return enqueue(
        session,
        key=key,
        purpose=purpose,
        mail_from=mail.mail_from,
        recipients=mail.recipients,
        raw=mail.raw,
        subject=mail.subject,
        message_id=mail.message_id,
        lead_id=lead_id,
        send_after=send_after,
    )


@dataclass(frozen=True)
class DeferredMail:
    """A templated mail to be rendered by the sender: what to send, not yet how it looks."""

    key: str
    purpose: str
    template: str
    language: str
    context: Mapping[str, Any]  # JSON-serialisable
    to: Sequence[tuple[str, str]]
    lead_id: int | None = None
    reply_to: Sequence[tuple[str, str]] = ()
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    send_after: datetime | None = None
    message_id: str | None = None  # chosen by the caller (to thread to it), else random


def enqueue_deferred(session: Session, dealer: DealerConfig, mails: Sequence[DeferredMail]) -> int:
    """Insert many templated mails in one statement, rendering none of them (no commit).

    Why: the escalation scheduler may owe a thousand reminders at 08:00 on a
    Monday; rendering each (three Jinja templates and a MIME build) inside its
    transaction made one pass take seconds.  The sender renders right before
    sending (:func:`materialise`), with the Message-ID stored here, so
    the result is the mail :func:`enqueue_template` would have stored.
    Returns how many were new (existing idempotency keys are skipped).
    """
    if not mails:
        return 0
    dialect = session.get_bind().dialect.name
    sender = check_address(dealer.sender_address)
    domain = sender.rpartition("@")[2]
    now = utcnow()
    rows = []
    for mail in mails:
        if not mail.key or len(mail.key) > MAX_KEY_LENGTH or not mail.to:
            raise ValueError(f"unusable deferred mail {mail.key!r}")
        due = mail.send_after or now
        rows.append(
            {
                "idempotency_key": mail.key,
                "purpose": mail.purpose[:64],
                "lead_id": mail.lead_id,
                "mail_from": sender,
                "recipients": [check_address(addr) for _, addr in mail.to],
                "subject": "",
                "message_id": mail.message_id or new_message_id(domain),
                "raw": None,
                "template": mail.template,
                "render": {
                    "language": mail.language,
                    "context": dict(mail.context),
                    "to": [list(pair) for pair in mail.to],
                    "reply_to": [list(pair) for pair in mail.reply_to],
                    "in_reply_to": mail.in_reply_to,
                    "references": list(mail.references),
                },
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "send_after": due,
                "next_attempt_at": due,
            }
        )
    return len(session.execute(_insert_statement(dialect), rows).all())


def materialise(dealer: DealerConfig, row: OutboxMail) -> ComposedMail | None:
    """Compose a deferred row's mail (None if the row already holds its bytes)."""
    if row.raw is not None:
        return None
    if not row.template or not row.render:
        raise ValueError(f"outbox {row.id} has neither raw bytes nor a template")
    render = row.render
    return compose_template(
        dealer,
        key=row.idempotency_key,
        template=row.template,
        language=render.get("language") or dealer.language,
        context=render.get("context") or {},
        to=[(name, addr) for name, addr in render.get("to") or []],
        reply_to=[(name, addr) for name, addr in render.get("reply_to") or []],
        in_reply_to=render.get("in_reply_to"),
        references=render.get("references") or [],
        message_id=row.message_id or None,
        purpose=row.purpose,
    )


def _claimable(now: datetime, model: Any = OutboxMail) -> Any:
    return or_(
        (model.status == OutboxStatus.PENDING) & (model.next_attempt_at <= now),
        (model.status == OutboxStatus.SENDING) & (model.lease_until < now),
    )


def claim_due(
    session: Session,
    me: str,
    now: datetime,
    *,
    limit: int = 100,
    lease_seconds: int = 300,
    model: Any = OutboxMail,
) -> list[Any]:
    """Claim due rows (pending, or sending with an expired lease) and commit the claim.

    The claim is committed before anyone talks to the relay, so a second
    sender sees ``sending`` and skips the row.  The UPDATE repeats the WHERE
    (compare-and-set): on SQLite ``BEGIN IMMEDIATE`` already serialises
    claimers, on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets two senders take
    disjoint batches instead of queueing behind each other.  ``model`` is any
    outbox-like table (status, next_attempt_at, claimed_by, lease_until): the
    webhook deliveries are claimed the same way.
    """
    claimable = _claimable(now, model)
    candidates = select(model.id).where(claimable).order_by(model.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates))
    if not ids:
        session.commit()
        return []
    claimed = session.scalars(
        update(model)
        .where(model.id.in_(ids), claimable)
        .values(
            status=OutboxStatus.SENDING,
            claimed_by=me,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        .returning(model.id)
    ).all()
    session.commit()
    if not claimed:
        return []
    rows = session.scalars(select(model).where(model.id.in_(claimed)).order_by(model.id)).all()
    session.commit()
    return list(rows)


def renew_claim(
    session: Session, row_id: int, me: str, until: datetime, *, model: Any = OutboxMail
) -> bool:
    """Extend our lease on one row right before sending it; False if we lost it.

    A long pass (slow relay, many mails) can outlive the lease taken at claim
    time; checking here keeps a row another sender has since re-claimed from
    being sent by both.  Commits, like the claim.
    """
    renewed = session.execute(
        update(model)
        .where(
            model.id == row_id,
            model.claimed_by == me,
            model.status == OutboxStatus.SENDING,
        )
        .values(lease_until=until)
    ).rowcount
    session.commit()
    return bool(renewed)


def release_dead_claims(session: Session, host: str, *, model: Any = OutboxMail) -> int:
    """Hand back rows claimed by a sender process on ``host`` that no longer exists.

    Why: a sender killed mid-pass (SIGKILL, OOM, power cut of a VM that comes
    back) leaves its rows ``sending`` until the lease runs out, five minutes or
    more, so a restart would not send them.  Owners are
    ``role:host:pid:thread:random``; a claim whose host is ours and whose pid is
    gone cannot be held by anyone, so it is released at once (a reused pid
    only keeps the row waiting for its lease, the old behaviour).  Claims of
    other hosts are left to the lease.  Commits; returns how many rows were freed.
    """
    owners = session.scalars(
        select(model.claimed_by)
        .where(model.status == OutboxStatus.SENDING, model.claimed_by.like(f"%:{host}:%"))
        .distinct()
    ).all()
    dead = [owner for owner in owners if owner and _owner_is_dead(owner, host)]
    freed = 0
    if dead:
        freed = session.execute(
            update(model)
            .where(model.status == OutboxStatus.SENDING, model.claimed_by.in_(dead))
            .values(status=OutboxStatus.PENDING, claimed_by=None, lease_until=None)
        ).rowcount
        log.warning("released %d mail(s) claimed by dead sender(s) %s", freed, ", ".join(dead))
    session.commit()
    return freed


def _owner_is_dead(owner: str, host: str) -> bool:
    parts = owner.rsplit(":", 4)
    if len(parts) != 5 or parts[1] != host or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, as another user
        return False
    return False
