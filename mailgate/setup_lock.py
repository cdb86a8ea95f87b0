"""The first-admin set-up: open once, and only to whoever can read the server's console.

``/setup`` creates an admin account for anyone who fills it in, so two locks
guard it:

* **Once.**  Set-up is open only while no admin was *ever* created.  A row in
  ``app_secret`` records the first admin, written in the same transaction that
  creates it (set-up page, ``mailgate users create-admin``, a settings import
  that brings an admin).  Later changes to the users -- every admin
  deactivated or demoted -- never reopen it; an admin locked out gets back in
  on the server (``mailgate users set-password``).  A database from before the
  flag existed counts as set up when any user row has the admin role.
* **Token.**  Even while open, the page wants a one-time token that the web
  UI prints to its log when it starts (as Jupyter and Grafana do), so the first
  anonymous visitor of a public address cannot win the race against the owner.
  Only the token's SHA-256 is stored, beside the others in ``app_secret``, so
  every process on one database accepts every token printed by any of them.
  Creating the admin *claims* the token with a conditional ``DELETE``: of two
  requests racing with the same token, one deletes the row and the other finds
  nothing, so exactly one admin is made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mailgate.models import AppSecret, User, UserRole, utcnow

ADMIN_CREATED = "setup.admin-created"
TOKEN_PREFIX = "setup.token."  # noqa: S105  # nosec B105 - a row-name prefix, not a secret
KEEP_TOKENS = 10  # a service restarting in a loop must not grow the table without end
MAX_TOKEN_LENGTH = 128  # ours are 43 characters; anything far longer is not one of ours


def admin_ever_created(session: Session) -> bool:
    """True once any admin existed: the flag, or (older databases) any admin row."""
    flag = session.scalar(select(AppSecret.name).where(AppSecret.name == ADMIN_CREATED))
    if flag is not None:
        return True
    return session.scalar(select(User.id).where(User.role == UserRole.ADMIN).limit(1)) is not None


def setup_open(session: Session) -> bool:
    """True while the one-time set-up page may create the first admin."""
    return not admin_ever_created(session)


def mark_admin_created(session: Session) -> None:
    """Close set-up for good, in the caller's transaction (the one creating the admin).

    Every outstanding set-up token goes with it.  The flag is inserted with
    ``ON CONFLICT DO NOTHING``, so two processes doing this at once both succeed.
    """
    session.execute(delete(AppSecret).where(AppSecret.name.startswith(TOKEN_PREFIX)))
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(AppSecret)
        .values(name=ADMIN_CREATED, value=utcnow().isoformat(), created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue_setup_token(session: Session) -> str | None:
    """A new set-up token while set-up is open (None once an admin was created).

    Tokens of earlier starts stay valid (another process may have printed
    them) until set-up closes; only the oldest beyond :data:`KEEP_TOKENS` go.
    """
    if not setup_open(session):
        return None
    token = secrets.token_urlsafe(32)
    session.add(
        AppSecret(
            name=TOKEN_PREFIX + secrets.token_hex(16), value=_digest(token), created_at=utcnow()
        )
    )
    session.flush()
    rows = session.scalars(
        select(AppSecret.name)
        .where(AppSecret.name.startswith(TOKEN_PREFIX))
        .order_by(AppSecret.created_at.desc(), AppSecret.name)
        .offset(KEEP_TOKENS)
    ).all()
    if rows:
        session.execute(delete(AppSecret).where(AppSecret.name.in_(rows)))
    return token


def _matching_row(session: Session, token: str | None) -> str | None:
    """The name of the stored token row ``token`` belongs to, compared in constant time."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = _digest(token)
    found = None
    stored = session.execute(
        select(AppSecret.name, AppSecret.value).where(AppSecret.name.startswith(TOKEN_PREFIX))
    )
    for name, value in stored:
        # No early exit: every stored digest is compared, whichever matches.
        if hmac.compare_digest(value.encode(), digest.encode()):
            found = name
    return found


def token_valid(session: Session, token: str | None) -> bool:
    """True if ``token`` is an unused set-up token and set-up is still open."""
    return _matching_row(session, token) is not None and setup_open(session)


def claim_setup_token(session: Session, token: str | None) -> bool:
    """Use up ``token`` in the caller's transaction; False if it is not (or no longer) valid.

    Check it with :func:`token_valid` (constant time) first.  The claim is one
    conditional ``DELETE``: of two transactions claiming the same token only
    one deletes the row (the other waits for the first one's lock, then finds
    nothing).  The caller creates the admin and calls :func:`mark_admin_created`
    in the same transaction, or rolls back on False.  On SQLite make the claim
    the transaction's first statement: a read snapshot taken before cannot be
    upgraded to the write lock once another writer has committed.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    claimed = session.execute(
        delete(AppSecret).where(
            AppSecret.name.startswith(TOKEN_PREFIX), AppSecret.value == _digest(token)
        )
    )
    return claimed.rowcount == 1 and setup_open(session)


def setup_url(host: str, port: int, token: str) -> str:
    """The link the console shows: a wildcard listen address becomes the loopback one."""
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104  # nosec B104 - naming it, not binding
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/setup?token={token}"
