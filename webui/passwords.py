"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106).

Why a module of its own: login, setup, reset and ``mailgate users`` all hash
and verify, and a hash made with older parameters is upgraded on the next
successful login (:func:`needs_rehash`).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l

MIN_LENGTH = 10
_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """The chosen password is refused; the message says why (in English, translated by the UI)."""


def check_strength(password: str, email: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(_l("at least %(n)d characters", n=MIN_LENGTH))
    if email and password.strip().lower() == email.strip().lower():
        raise WeakPassword(_l("must not be the e-mail address"))
    if len(set(password)) < 4:
        raise WeakPassword(_l("too few different characters"))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing or malformed hash never matches."""
    if not stored:
        # Same work as a real check, so timing does not tell which accounts exist.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
