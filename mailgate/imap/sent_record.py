"""The Sent-folder watcher's database side: cursor and status per user, answers counted once.

Each function opens and commits its own short transaction, in the order the
poller uses (:mod:`mailgate.imap.state`): the answers of a batch first, the
cursor after; a crash in between re-reads the batch, and the unique answer
key turns the second count into nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mailgate.imap.rules import Cursor
from mailgate.imap.sent_mail import SentMail, reaches_intake
from mailgate.models import (
    OPEN_STATUSES,
    Customer,
    Lead,
    LeadStatus,
    SentFolderAnswer,
    SentFolderState,
    utcnow,
)
from mailgate.protocol import phrase
from mailgate.protocol_log import log

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _state(session: Session, user_id: int, folder: str) -> SentFolderState:
    state = session.get(SentFolderState, (user_id, folder))
    if state is None:
        state = SentFolderState(user_id=user_id, folder=folder, last_uid=0, answered_total=0)
        session.add(state)
    return state


def load_cursor(factory: sessionmaker[Session], user_id: int, folder: str) -> Cursor | None:
    with factory() as session:
        state = session.get(SentFolderState, (user_id, folder))
        if state is None or state.uidvalidity is None:
            return None
        return Cursor(state.uidvalidity, state.last_uid)


def save_cursor(factory: sessionmaker[Session], user_id: int, folder: str, cursor: Cursor) -> None:
    """Store the cursor; within one UIDVALIDITY it never moves back."""
    with factory() as session:
        state = _state(session, user_id, folder)
        if state.uidvalidity == cursor.uidvalidity:
            state.last_uid = max(state.last_uid or 0, cursor.last_uid)
        else:
            state.uidvalidity, state.last_uid = cursor.uidvalidity, cursor.last_uid
        session.commit()


def oldest_open_lead(factory: sessionmaker[Session], user_id: int) -> datetime | None:
    """When the user's oldest open lead came in: older sent mail cannot answer anything."""
    with factory() as session:
        return session.scalar(
            select(func.min(Lead.received_at)).where(
                Lead.assignee_id == user_id, Lead.status.in_(OPEN_STATUSES)
            )
        )


def record_sent(
    factory: sessionmaker[Session],
    user_id: int,
    user_email: str,
    mails: Sequence[SentMail],
    dealer_addresses: Sequence[str],
) -> int:
    """Count the mails that answer an open lead of the user; returns how many leads.

    A mail answers every open lead of *this* user whose customer is among its
    recipients and which came in before the mail was sent.  Mails to anyone
    else leave no trace; a mail also sent to a lead address is left to the
    intake (it counts it there).
    """
    answered = 0
    with factory() as session:
        for mail in mails:
            recipients = [r for r in mail.recipients if r != user_email.lower()]
            if not recipients or reaches_intake(recipients, dealer_addresses):
                continue
            answered += _answer_leads(session, user_id, user_email, mail, recipients)
        session.commit()
    return answered


def _answer_leads(
    session: Session, user_id: int, user_email: str, mail: SentMail, recipients: list[str]
) -> int:
    rows = session.execute(
        select(Lead.id, Lead.status, Lead.first_response_at, Lead.last_activity_at, Customer.email)
        .join(Customer, Customer.id == Lead.customer_id)
        .where(
            func.lower(Customer.email).in_(recipients),
            Lead.assignee_id == user_id,
            Lead.status.in_(OPEN_STATUSES),
            Lead.received_at < mail.sent_at,
        )
        .order_by(Lead.id)
    ).all()
    count = 0
    insert = _INSERTS[session.get_bind().dialect.name]
    for lead_id, status, first_response_at, last_activity_at, customer_email in rows:
        fresh = session.execute(
            insert(SentFolderAnswer)
            .values(
                user_id=user_id,
                message_key=mail.message_key,
                message_id=mail.message_id,
                lead_id=lead_id,
                sent_at=mail.sent_at,
                recorded_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["user_id", "message_key", "lead_id"])
            .returning(SentFolderAnswer.id)
        ).first()
        if fresh is None:
            continue  # counted before (a re-read after a crash or a UIDVALIDITY change)
        values: dict[str, object] = {"last_activity_at": max(last_activity_at, mail.sent_at)}
        if first_response_at is None:
            values |= {"first_response_at": mail.sent_at, "next_due_at": None}
            if status in (LeadStatus.NEW, LeadStatus.ASSIGNED):
                values["status"] = LeadStatus.CONTACTED.value
        session.execute(update(Lead).where(Lead.id == lead_id).values(**values))
        what = phrase("answered_from_sent", user=user_email, to=(customer_email or "").lower())
        log(session, lead_id, actor=user_email, action="answered", what=what, at=mail.sent_at)
        count += 1
    return count


def record_attempt(factory: sessionmaker[Session], user_id: int, folder: str) -> None:
    with factory() as session:
        _state(session, user_id, folder).last_attempt_at = utcnow()
        session.commit()


def record_success(
    factory: sessionmaker[Session], user_id: int, folder: str, answered: int
) -> None:
    with factory() as session:
        state = _state(session, user_id, folder)
        state.answered_total = (state.answered_total or 0) + answered
        state.last_success_at, state.last_error = utcnow(), None
        session.commit()


def record_error(factory: sessionmaker[Session], user_id: int, folder: str, message: str) -> None:
    with factory() as session:
        state = _state(session, user_id, folder)
        state.last_error, state.last_error_at = message[:2000], utcnow()
        session.commit()


@dataclass(frozen=True)
class SentFolderStatus:
    """What the user's settings page shows about his watched Sent folder."""

    folder: str
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    answered_total: int

    @property
    def ok(self) -> bool:
        return self.last_error is None and self.last_success_at is not None


def sent_folder_status(session: Session, user_id: int, folder: str) -> SentFolderStatus | None:
    """The status of the user's configured folder; None before the first attempt."""
    state = session.get(SentFolderState, (user_id, folder))
    if state is None or state.last_attempt_at is None and state.last_error is None:
        return None
    return SentFolderStatus(
        folder=folder,
        last_success_at=state.last_success_at,
        last_error=state.last_error,
        last_error_at=state.last_error_at,
        answered_total=state.answered_total or 0,
    )
