"""The webhook signature: what the sender computes and what a receiver checks.

``X-Mailgate-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` with
``X-Mailgate-Timestamp`` (Unix seconds): signing the timestamp with the body lets
a receiver refuse replays of an old delivery.  Pure.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, header: str, *, now: float, tolerance: int = 300
) -> bool:
    """What a receiver does (and the tests): constant-time compare, recent timestamp."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now - stamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, stamp, body), header)
