"""Helpers for web UI tests: accounts with passwords, logging in, CSRF-correct posts.

Every POST in the UI needs a CSRF token; :func:`post` takes it from the page
the form is on, as a browser would, so tests exercise the real protection.
"""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from mailgate import db
from mailgate.config import Settings
from mailgate.models import User
from mailgate.setup_lock import issue_setup_token
from mailgate.webui import create_app
from mailgate.webui.passwords import hash_password

PASSWORD = "korrekt-Pferd-42"
_HASH_CACHE: dict[str, str] = {}
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def password_hash(password: str = PASSWORD) -> str:
    """Argon2 is slow by design; one hash per password per test run is enough."""
    if password not in _HASH_CACHE:
        _HASH_CACHE[password] = hash_password(password)
    return _HASH_CACHE[password]


def ensure_user(
    factory: sessionmaker[Session],
    email: str,
    role: str = "salesperson",
    *,
    name: str = "",
    password: str | None = PASSWORD,
    **values: object,
) -> int:
    """Create or update a user with a password; returns the id."""
    with db.session_scope(factory) as session:
        user = session.scalar(select(User).where(func.lower(User.email) == email.lower()))
        if user is None:
            user = User(email=email.lower(), name=name or email.split("@")[0].title())
            session.add(user)
        user.role = role
        user.active = True
        user.password_hash = password_hash(password) if password else None
        for key, value in values.items():
            setattr(user, key, value)
        session.flush()
        return user.id


def setup_token(factory: sessionmaker[Session]) -> str:
    """A one-time set-up token, as ``mailgate serve`` issues and prints it when it starts."""
    with db.session_scope(factory) as session:
        token = issue_setup_token(session)
    assert token, "set-up is closed: an admin was created already"
    return token


def web_app(factory: sessionmaker[Session], settings: Settings | None = None) -> Flask:
    app = create_app(factory, settings or Settings())
    app.config["TESTING"] = True
    return app


def csrf_token(client: FlaskClient, page: str) -> str:
    response = client.get(page)
    match = TOKEN.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {page} ({response.status_code})"
    return match.group(1) or match.group(2)


def post(
    client: FlaskClient,
    path: str,
    data: dict[str, object] | None = None,
    *,
    page: str | None = None,
) -> TestResponse:
    """POST ``data`` to ``path`` with the CSRF token of ``page`` (default: ``path``)."""
    token = csrf_token(client, page or path)
    return client.post(path, data={**(data or {}), "csrf_token": token})


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    response = post(client, "/login", {"email": email, "password": password})
    assert response.status_code == 302, f"login of {email} failed: {response.status_code}"
    return response


def logged_in(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    login(client, email, password)
    return client
