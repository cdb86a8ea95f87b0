"""Throttling of login attempts: failures counted per account and per client address.

Kept in the database (table ``login_failure``) so a restart does not reset the
count and several instances share it.  Only failures count: a user who logs in
correctly is never slowed down by someone guessing from elsewhere beyond the
per-account limit, and a success clears that account's failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from mailgate.models import LoginFailure

WINDOW = timedelta(minutes=15)
MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 30


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: timedelta = timedelta(0)


def check(session: Session, email: str, ip: str, now: datetime) -> Verdict:
    """May this client try to log in to ``email`` now?"""
    since = now - WINDOW
    email = email.strip().lower()
    for column, value, limit in (
        (LoginFailure.email, email, MAX_PER_ACCOUNT),
        (LoginFailure.ip, ip, MAX_PER_ADDRESS),
    ):
        count, oldest = session.execute(
            select(func.count(), func.min(LoginFailure.at)).where(
                column == value, LoginFailure.at > since
            )
        ).one()
        if count >= limit:
            return Verdict(False, max(oldest + WINDOW - now, timedelta(seconds=1)))
    return Verdict(True)


def record_failure(session: Session, email: str, ip: str, now: datetime) -> None:
    session.add(LoginFailure(email=email.strip().lower()[:320], ip=ip[:64], at=now))
    # Old rows are useless; drop them as we go instead of needing a cron job.
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - 4 * WINDOW))


def clear(session: Session, email: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.email == email.strip().lower()))


def count_recent(session: Session, email: str, ip: str, now: datetime) -> int:
    """Failures in the window for the account or the address (for tests and the log)."""
    return (
        session.scalar(
            select(func.count()).where(
                or_(LoginFailure.email == email.strip().lower(), LoginFailure.ip == ip),
                LoginFailure.at > now - WINDOW,
            )
        )
        or 0
    )
