"""Device cookies: a browser that logged in to an account before keeps its good history.

After a successful login the browser gets a signed cookie naming a random
device id and (hashed) the accounts that logged in from it.  The login
throttle (:mod:`.throttle`) counts that browser's attempts under its own key
and lets it past the ceilings against password spraying, so a guesser behind
the dealership's NAT address cannot lock out colleagues who have logged in
before (the "device cookie" defence in OWASP's authentication guidance).

The cookie proves nothing but an earlier correct password: it never logs
anybody in, and a forged or expired one counts as no cookie at all.
"""

from __future__ import annotations

import hashlib
import secrets

from flask import Flask, Request, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

COOKIE = "mailgate_device"
SALT = "mailgate-login-device"
MAX_AGE_SECONDS = 180 * 24 * 3600
MAX_ACCOUNTS = 20  # a shared PC at the front desk: several salespeople on one browser


def _serializer(app: Flask) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(app.secret_key or "", salt=SALT)


def _account(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]


def _read(request: Request) -> dict[str, object]:
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 4096:
        return {}
    try:
        data = _serializer(current_app).loads(raw, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return {}
    return data


def known_device(request: Request, email: str) -> str | None:
    """The device id if this browser logged in to ``email`` before, else None."""
    data = _read(request)
    accounts = data.get("acc")
    if isinstance(accounts, list) and _account(email) in accounts:
        return str(data["id"])
    return None


def remember(request: Request, response: Response, email: str, *, secure: bool) -> None:
    """Add ``email`` to this browser's good history (after a correct password)."""
    data = _read(request)
    device = str(data.get("id") or secrets.token_hex(12))
    accounts = [a for a in data.get("acc", []) or [] if isinstance(a, str)]  # type: ignore[union-attr]
    mine = _account(email)
    accounts = [a for a in accounts if a != mine][-(MAX_ACCOUNTS - 1) :] + [mine]
    value = _serializer(current_app).dumps({"id": device, "acc": accounts})
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=secure,
        path="/",
    )
