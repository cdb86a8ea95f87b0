"""Invitation links: an admin creates a user, the user sets his own password from a mail.

The same construction as the password-reset link (:mod:`.reset`): the token
carries the user id and a fingerprint of the current password hash, signed
with the app's secret (itsdangerous), under a salt of its own so a reset link
is no invitation and the other way round.  Setting the password changes the
hash, so the link works once; it expires after :data:`MAX_AGE_SECONDS`, longer
than a reset link because a new colleague may read it only on his first day.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from mailgate.models import User

from ..access import session_id_of

MAX_AGE_SECONDS = 7 * 24 * 60 * 60  # seven days
SALT = "mailgate-invitation"
MAX_TOKEN_LENGTH = 512  # ours are about 80 characters


def _serializer(secret: str, issued_at: int | None = None) -> URLSafeTimedSerializer:
    """The serializer; ``issued_at`` sets the signing clock (tests sign a week-old link)."""
    if issued_at is None:
        return URLSafeTimedSerializer(secret, salt=SALT)

    class IssuedAt(TimestampSigner):
        def get_timestamp(self) -> int:
            return issued_at

    return URLSafeTimedSerializer(secret, salt=SALT, signer=IssuedAt)


def make_token(secret: str, user: User, *, issued_at: int | None = None) -> str:
    """The token for ``user``'s invitation link (``issued_at``: seconds since the epoch)."""
    return _serializer(secret, issued_at).dumps(session_id_of(user))


def user_for_token(session: Session, secret: str, token: str) -> User | None:
    """The invited user if the token is genuine, fresh and unused; else None."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        session_id = _serializer(secret).loads(token, max_age=MAX_AGE_SECONDS)
    except (SignatureExpired, BadSignature):
        return None
    user_id, _, _ = str(session_id).partition(":")
    if not user_id.isdigit() or len(user_id) > 18:
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.active or session_id_of(user) != session_id:
        return None
    return user
