"""Throttling of login attempts, so guessing is slow but nobody can lock colleagues out.

A dealership's salespeople log in from one NAT address (or through one reverse
proxy), so a limit per client address alone would let one guesser lock out
everybody, correct passwords included.  Instead:

* **Per pair (account, client)** - the first :data:`FREE_FAILURES` failures cost
  nothing, then each further one makes the pair wait 1 s, 2 s, 4 s ... up to
  :data:`MAX_DELAY`.  A guesser slows down only himself on the account he attacks.
* **Ceilings against spraying**, for clients without a good history: from one
  address, failures for :data:`ADDRESS_CEILING` different accounts within
  :data:`CEILING_WINDOW`; for one account, :data:`ACCOUNT_CEILING` failures from
  everywhere (a botnet).  Above a ceiling even a correct password is refused -
  that is what stops a sprayed guess that happens to be right.
* **Good history** is a browser that logged in to the account before (a signed
  device cookie, :mod:`.devices`).  Its attempts are counted under its own key,
  not the address, and the ceilings do not apply: a colleague behind the same
  NAT as the guesser logs in as usual.

Everything lives in the table ``login_failure`` (``email`` + ``ip``), shared by
every instance and kept across restarts.  The ``ip`` column holds the key the
row is counted under: the client address, ``device|<id>`` for a known browser,
``reset|<address>`` for a password-reset request (``|`` appears in no address).
Only failures are stored; a success clears its own pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, select
from sqlalchemy.orm import Session

from mailgate.models import LoginFailure

FREE_FAILURES = 5
BASE_DELAY = timedelta(seconds=1)
MAX_DELAY = timedelta(minutes=15)
PAIR_WINDOW = timedelta(hours=24)  # a pair's failures count this long (or until a success)
CEILING_WINDOW = timedelta(hours=1)
ADDRESS_CEILING = 30  # different accounts failed from one address (no good history)
ACCOUNT_CEILING = 60  # failures for one account from addresses without good history
RESET_PER_ACCOUNT = 3  # reset mails per account and hour: no mail bombing
RESET_PER_ADDRESS = 20  # reset requests per address and hour
DEVICE, RESET, SEPARATOR = "device", "reset", "|"


@dataclass(frozen=True)
class Client:
    """Who is trying: the address (after trusted proxies) and, for a browser that logged
    in to this account before, the id from its device cookie."""

    ip: str
    device: str | None = None

    @property
    def key(self) -> str:
        if self.device:
            return f"{DEVICE}{SEPARATOR}{self.device}"[:64]
        return self.ip[:64]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: timedelta = timedelta(0)
    reason: str = ""  # "pair", "address", "account": for the log, never for the page


def delay_after(failures: int) -> timedelta:
    """Wait after ``failures`` failures of one pair: nothing at first, then doubling."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(BASE_DELAY * 2 ** min(failures - FREE_FAILURES, 20), MAX_DELAY)


def _normal(email: str) -> str:
    return email.strip().lower()[:320]


def _plain_address() -> ColumnElement[bool]:
    """Rows keyed by a client address (not a device, not a reset request)."""
    return not_(LoginFailure.ip.contains(SEPARATOR))


def check(session: Session, email: str, client: Client, now: datetime) -> Verdict:
    """May this client try a password for ``email`` now?"""
    email = _normal(email)
    count, last = session.execute(
        select(func.count(), func.max(LoginFailure.at)).where(
            LoginFailure.email == email,
            LoginFailure.ip == client.key,
            LoginFailure.at > now - PAIR_WINDOW,
        )
    ).one()
    wait = (last + delay_after(count) - now) if last is not None else timedelta(0)
    if wait > timedelta(0):
        return Verdict(False, wait, "pair")
    if client.device:
        return Verdict(True)
    return _ceilings(session, email, client.ip, now)


def _ceilings(session: Session, email: str, ip: str, now: datetime) -> Verdict:
    since = now - CEILING_WINDOW
    accounts, oldest = session.execute(
        select(func.count(func.distinct(LoginFailure.email)), func.min(LoginFailure.at)).where(
            LoginFailure.ip == ip, LoginFailure.at > since
        )
    ).one()
    if accounts >= ADDRESS_CEILING:
        return Verdict(False, max(oldest + CEILING_WINDOW - now, BASE_DELAY), "address")
    failures, oldest = session.execute(
        select(func.count(), func.min(LoginFailure.at)).where(
            LoginFailure.email == email, _plain_address(), LoginFailure.at > since
        )
    ).one()
    if failures >= ACCOUNT_CEILING:
        return Verdict(False, max(oldest + CEILING_WINDOW - now, BASE_DELAY), "account")
    return Verdict(True)


def record_failure(session: Session, email: str, client: Client, now: datetime) -> None:
    _record(session, _normal(email), client.key, now)


def _record(session: Session, email: str, key: str, now: datetime) -> None:
    session.add(LoginFailure(email=email, ip=key, at=now))
    # Old rows are useless; drop them as we go instead of needing a cron job.
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - PAIR_WINDOW))


def clear(session: Session, email: str, client: Client) -> None:
    """A success forgets this pair's failures only: a guesser's pair from elsewhere stays.

    Looked for first: a login without earlier failures (nearly all of them)
    then writes nothing, so it never waits for SQLite's write lock while a
    burst of mail is being stored (issue 18).
    """
    pair = and_(LoginFailure.email == _normal(email), LoginFailure.ip == client.key)
    if session.scalar(select(exists().where(pair))):
        session.execute(delete(LoginFailure).where(pair))


def reset_allowed(session: Session, email: str, ip: str, now: datetime) -> bool:
    """May a reset mail go out for ``email`` at the request of ``ip``? (Counted separately
    from logins: a colleague asking for a link does not slow down anybody's login.)"""
    since = now - CEILING_WINDOW
    reset_rows = LoginFailure.ip.startswith(f"{RESET}{SEPARATOR}")
    per_account = session.scalar(
        select(func.count()).where(
            LoginFailure.email == _normal(email), reset_rows, LoginFailure.at > since
        )
    )
    per_address = session.scalar(
        select(func.count()).where(and_(LoginFailure.ip == _reset_key(ip), LoginFailure.at > since))
    )
    return (per_account or 0) < RESET_PER_ACCOUNT and (per_address or 0) < RESET_PER_ADDRESS


def record_reset(session: Session, email: str, ip: str, now: datetime) -> None:
    _record(session, _normal(email), _reset_key(ip), now)


def _reset_key(ip: str) -> str:
    return f"{RESET}{SEPARATOR}{ip}"[:64]
