"""The outbox table: mails are enqueued in the caller's transaction, sent later.

Stages and services never talk SMTP; they add an :class:`OutboxMail` row in the
same transaction as the state change it belongs to, so a notification exists
if and only if its lead does.  The unique idempotency key (lead, purpose,
stage…) makes enqueueing the same mail twice a no-op.  The sender claims due
rows by compare-and-set with a lease, so two senders never send one row twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import OutboxMail, OutboxStatus, utcnow
from mailgate.outbound.compose import Attachment, build_message, make_message_id, render_mail


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
    """Insert one outbox row unless the key exists; returns whether it was inserted."""
    now = utcnow()
    values = {
        "idempotency_key": key,
        "purpose": purpose,
        "lead_id": lead_id,
        "mail_from": mail_from,
        "recipients": list(recipients),
        "subject": subject,
        "message_id": message_id,
        "raw": raw,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "send_after": send_after or now,
        "next_attempt_at": send_after or now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(OutboxMail).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return bool(session.execute(statement).rowcount)


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
    """Render a template pair and enqueue the composed mail."""
    if session.scalar(select(OutboxMail.id).where(OutboxMail.idempotency_key == key)):
        return False  # already queued: do not even render
    rendered = render_mail(
        template, language, {**context, "dealer_name": dealer.name}, override_dir
    )
    sender = dealer.sender_address
    message_id = make_message_id(key, sender.rpartition("@")[2])
    raw = build_message(
        from_name=dealer.from_name,
        from_address=sender,
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id,
        reply_to=reply_to,
        in_reply_to=in_reply_to,
        references=references,
        attachments=attachments,
    )
    return enqueue(
        session,
        key=key,
        purpose=purpose,
        mail_from=sender,
        recipients=[addr for _, addr in to],
        raw=raw,
        subject=rendered.subject,
        message_id=message_id,
        lead_id=lead_id,
        send_after=send_after,
    )


def claim_due(
    session: Session, me: str, now: datetime, *, limit: int = 100, lease_seconds: int = 300
) -> list[OutboxMail]:
    """Claim due rows (pending, or sending with an expired lease) and commit the claim."""
    claimable = or_(
        (OutboxMail.status == OutboxStatus.PENDING) & (OutboxMail.next_attempt_at <= now),
        (OutboxMail.status == OutboxStatus.SENDING) & (OutboxMail.lease_until < now),
    )
    candidates = select(OutboxMail.id).where(claimable).order_by(OutboxMail.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates))
    if not ids:
        session.commit()
        return []
    claimed = session.scalars(
        update(OutboxMail)
        .where(OutboxMail.id.in_(ids), claimable)
        .values(
            status=OutboxStatus.SENDING,
            claimed_by=me,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        .returning(OutboxMail.id)
    ).all()
    session.commit()
    if not claimed:
        return []
    rows = session.scalars(
        select(OutboxMail).where(OutboxMail.id.in_(claimed)).order_by(OutboxMail.id)
    ).all()
    session.commit()
    return list(rows)
