"""API tokens: made once and shown once, stored as a SHA-256 hash, checked per request.

Why a plain SHA-256 and not Argon2 like passwords: a token is 256 random bits,
so there is nothing to guess, and every API request checks one; a slow hash
would only cost time.  The prefix is kept in clear so an admin can tell tokens
apart.  Service functions: the caller commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailgate.models import ApiToken, utcnow

SCOPES = ("read", "write")
TOKEN_PREFIX = "mg_"  # noqa: S105  # nosec B105  # a marker, not a secret
LAST_USE_PRECISION = timedelta(minutes=1)  # at most one write per token and minute


class TokenError(ValueError):
    """The token cannot be made (no name, a name in use, an unknown scope)."""


@dataclass(frozen=True)
class Caller:
    """Who called the API: the token's name (for the protocol) and scopes."""

    token_id: int
    name: str
    scopes: tuple[str, ...]

    @property
    def actor(self) -> str:
        return f"api:{self.name}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, name: str, scopes: list[str]) -> tuple[ApiToken, str]:
    """A new token; returns the row and the token itself (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise TokenError("a token needs a name of 1 to 64 characters")
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise TokenError(f"scopes are {', '.join(SCOPES)}")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)):
        raise TokenError(f"a token named {name!r} exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        token_hash=digest(token),
        prefix=token[:10],
        scopes=[s for s in SCOPES if s in scopes],
        active=True,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, token


def revoke_token(session: Session, token_id: int) -> bool:
    """Deactivate a token (kept for the record); False if there is none."""
    return bool(
        session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(active=False)
        ).rowcount
    )


def authenticate(session: Session, token: str, now: datetime | None = None) -> Caller | None:
    """The caller a bearer token belongs to (active tokens only), noting its last use."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest(token), ApiToken.active)
    )
    if row is None:
        return None
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USE_PRECISION:
        row.last_used_at = now
        session.commit()
    return Caller(row.id, row.name, tuple(row.scopes or ()))
