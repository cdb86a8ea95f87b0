"""Signed action links in staff mails: "I contacted the customer", "resubmit tomorrow", "take it".

A link carries its claims (user, lead, action, expiry, a random token id) and
an HMAC-SHA256 over them (keyed with a secret kept in the database), so
the web UI can trust it without a login: the link *is* the identification,
which is what makes it usable from a phone.  Because of that it must be
single-use (the token id is recorded when it acts, see :func:`record_use`) and
expire (72 h after the mail may leave the outbox).

Signing and checking are pure (no clock, no database); :func:`link_secret`
and :func:`record_use` are the two places that touch the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailgate.models import AppSecret, SignedLinkUse

SECRET_NAME = "mail_links"  # noqa: S105  # nosec B105  # name of a stored secret, not a secret
SALT = b"mailgate.signed-action"
MAC_BYTES = 20  # 160 bits of HMAC-SHA256: far beyond guessing, and a shorter link
# confirm_reply: an answer from an address not on file is the assignee's (escalation/relay_notices)
ACTIONS = ("contacted", "resubmit", "take", "confirm_reply", "take_over", "reassign")
VALID_FOR = timedelta(hours=72)
PATH = "/m/"


class LinkError(ValueError):
    """The link cannot be used; ``reason`` is a code the web page explains in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    """What a verified link says: who may do what to which lead, until when."""

    user_id: int
    lead_id: int
    action: str
    expires_at: datetime
    token_id: str


@lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    """A key for links only, derived from the secret (the secret may serve elsewhere too)."""
    return hmac.new(secret.encode(), SALT, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(_key(secret), payload.encode("ascii"), hashlib.sha256).digest()
    return _b64(digest[:MAC_BYTES])


def sign(secret: str, claims: LinkClaims) -> str:
    """The URL-safe token for ``claims``: ``base64(user:lead:action:expiry:id).mac``.

    Hand-rolled on :mod:`hmac` rather than itsdangerous: the scheduler signs
    two links for each of a thousand reminders in one pass, and a serializer
    object per link cost most of a millisecond each.
    """
    if claims.action not in ACTIONS:
        raise ValueError(f"unknown link action {claims.action!r}")
    if ":" in claims.token_id:
        raise ValueError("a token id has no colon")
    fields = (
        claims.user_id,
        claims.lead_id,
        claims.action,
        int(claims.expires_at.timestamp()),
        claims.token_id,
    )
    payload = _b64(":".join(str(f) for f in fields).encode())
    return f"{payload}.{_mac(secret, payload)}"


def new_claims(
    user_id: int, lead_id: int, action: str, valid_from: datetime, token_id: str | None = None
) -> LinkClaims:
    """Claims valid for :data:`VALID_FOR` after ``valid_from`` (when the mail may leave)."""
    return LinkClaims(
        user_id=user_id,
        lead_id=lead_id,
        action=action,
        expires_at=valid_from + VALID_FOR,
        token_id=token_id or secrets.token_urlsafe(12),
    )


def verify(secret: str, token: str, now: datetime) -> LinkClaims:
    """The claims of an authentic, unexpired token; :class:`LinkError` otherwise.

    ``reason`` is ``invalid`` (tampered, other key, garbage) or ``expired``.
    """
    payload, dot, mac = token.partition(".")
    if not dot or not hmac.compare_digest(mac.encode(), _mac(secret, payload).encode()):
        raise LinkError("invalid")
    try:
        user, lead, action, expires, token_id = _unb64(payload).decode("ascii").split(":")
        claims = LinkClaims(
            user_id=int(user),
            lead_id=int(lead),
            action=action,
            expires_at=datetime.fromtimestamp(int(expires), UTC),
            token_id=token_id,
        )
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise LinkError("invalid") from exc
    if claims.action not in ACTIONS or not claims.token_id:
        raise LinkError("invalid")
    if now >= claims.expires_at:
        raise LinkError("expired")
    return claims


def link_url(base_url: str, token: str) -> str:
    """The absolute link; empty without a base URL (the mail then carries no links)."""
    base = base_url.rstrip("/")
    return f"{base}{PATH}{token}" if base else ""


def action_links(
    secret: str,
    base_url: str,
    *,
    user_id: int,
    lead_id: int,
    actions: tuple[str, ...],
    valid_from: datetime,
) -> dict[str, str]:
    """``{action: url}`` for a mail's context; ``{}`` without a base URL or a user."""
    if not base_url or not user_id:
        return {}
    return {
        action: link_url(base_url, sign(secret, new_claims(user_id, lead_id, action, valid_from)))
        for action in actions
    }


# --- the database edges ----------------------------------------------------------------------


def link_secret(session: Session) -> str:
    """The signing key, created on first use inside the caller's transaction.

    A savepoint keeps a lost creation race (another process made it first)
    from aborting the caller's work; then the winner's key is read.
    """
    found = session.get(AppSecret, SECRET_NAME)
    if found is not None:
        return found.value
    try:
        with session.begin_nested():
            session.add(AppSecret(name=SECRET_NAME, value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass
    found = session.get(AppSecret, SECRET_NAME, populate_existing=True)
    assert found is not None
    return found.value


def was_used(session: Session, claims: LinkClaims) -> bool:
    return session.get(SignedLinkUse, claims.token_id) is not None


def record_use(session: Session, claims: LinkClaims, now: datetime) -> None:
    """Mark the token used, in the transaction of the action it performs.

    The primary key makes a second use (a double click, two devices racing)
    fail with :class:`LinkError` ``used`` instead of acting twice.
    """
    try:
        with session.begin_nested():
            session.add(
                SignedLinkUse(
                    token_id=claims.token_id,
                    user_id=claims.user_id,
                    lead_id=claims.lead_id,
                    action=claims.action,
                    used_at=now,
                )
            )
    except IntegrityError as exc:
        raise LinkError("used") from exc
