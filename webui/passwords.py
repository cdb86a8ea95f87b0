"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106).

Why a module of its own: login, setup, reset and ``mailgate users`` all hash
and verify, and a hash made with older parameters is upgraded on the next
successful login (:func:`needs_rehash`).
"""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
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


@cache
def _dummy_hash() -> str:
    """A hash of a random password, made with the real hasher's parameters (once)."""
    return _hasher.hash(secrets.token_urlsafe(24))


def verify_dummy(password: str) -> bool:
    """The work of a real check, for an unknown, deactivated or password-less account.

    Login calls this whenever there is no hash to check, so the answer takes
    as long as for a real account and timing does not tell which addresses have
    one.  Always False (the password behind the dummy hash is never known).
    """
    try:
        _hasher.verify(_dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        pass
    return False


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing or malformed hash never matches (and costs
    the same time as a real check)."""
    if not stored:
        return verify_dummy(password)
    try:
        return _hasher.verify(stored, password)
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):  # refused before any work: do it anyway
        return verify_dummy(password)


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
