"""What an admin does with the outbox: put a mail that failed back in the queue.

Kept apart from the sender (:mod:`.send`, :mod:`.outbox`) so the delivery
loop stays the only code that moves mails forward; this only resets a mail to
*pending* so the next sender pass tries it afresh.  Why reset the attempt
counter: a dead mail has used up its attempts, and without a reset the first
new temporary failure would kill it again at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from mailgate.models import OutboxMail, OutboxStatus
from mailgate.protocol import phrase
from mailgate.protocol_log import log


class ResendError(ValueError):
    """The mail cannot be resent (unknown, already sent, on its way, or never failed)."""


def resendable(
    status: str, last_error: str | None, next_attempt_at: datetime | None, now: datetime
) -> bool:
    """Dead mails, and pending ones that failed and wait for their back-off (to skip it)."""
    if status == OutboxStatus.DEAD:
        return True
    waiting = next_attempt_at is not None and next_attempt_at > now
    return status == OutboxStatus.PENDING and bool(last_error) and waiting


def resend(session: Session, outbox_id: int, actor: str, now: datetime) -> None:
    """Queue the mail again for the next sender pass; writes the lead's protocol (no commit).

    Compare-and-set on the status, so a sender that claims the mail in the
    same moment wins and the admin gets an error instead of a double send.
    """
    mail = session.get(OutboxMail, outbox_id)
    if mail is None:
        raise ResendError(f"no outbox mail {outbox_id}")
    if not resendable(mail.status, mail.last_error, mail.next_attempt_at, now):
        raise ResendError(f"outbox mail {outbox_id} is {mail.status}, not failed")
    moved = session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == outbox_id, OutboxMail.status == mail.status)
        .values(
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            claimed_by=None,
            lease_until=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise ResendError(f"outbox mail {outbox_id} changed meanwhile")
    if mail.lead_id is not None:
        what = phrase("outbox_resend", purpose=mail.purpose, outbox=outbox_id, user=actor)
        log(session, mail.lead_id, actor=actor, action="outbox_resend", what=what, at=now)
    session.expire(mail)
