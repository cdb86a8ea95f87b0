"""Password-reset links: signed, expiring, single-use without a token table.

The token carries the user id and a fingerprint of the current password hash,
signed with the app's secret (itsdangerous).  Setting a new password changes
the hash, so a used link - and every other link sent before - stops working.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from mailgate.models import User

from ..access import session_id_of

MAX_AGE_SECONDS = 60 * 60  # one hour
SALT = "mailgate-password-reset"


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def make_token(secret: str, user: User) -> str:
    return _serializer(secret).dumps(session_id_of(user))


def user_for_token(session: Session, secret: str, token: str) -> User | None:
    """The user the token is for, if it is genuine, fresh and unused; else None."""
    try:
        session_id = _serializer(secret).loads(token, max_age=MAX_AGE_SECONDS)
    except (SignatureExpired, BadSignature):
        return None
    user_id, _, _ = str(session_id).partition(":")
    if not user_id.isdigit():
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.active or session_id_of(user) != session_id:
        return None
    return user
