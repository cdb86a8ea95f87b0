"""Web security in one place: the session secret, cookie flags, CSRF, response headers,
the trusted Host names and proxies (:mod:`.hosts`).

The secret comes from the settings (``[web] secret_key`` / ``MAILGATE_WEB_SECRET_KEY``
/ ``..._FILE``) or, when none is set, is generated once and kept in the
database, so sessions and signed links survive restarts and every instance on
one database shares it.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from flask import Flask, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf import CSRFProtect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.wrappers import Response

from mailgate.base_url import host_of, stored_base_url
from mailgate.config import Settings
from mailgate.models import AppSecret

from . import hosts

log = logging.getLogger("mailgate.webui")
SESSION_SECRET = "web_session"  # noqa: S105  # nosec B105  # name of a stored secret, not one
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
csrf = CSRFProtect()


def stored_secret(factory: sessionmaker[Session], name: str) -> str:
    """The named secret, created on first use (two instances racing agree on one)."""
    with factory() as session:
        found = session.get(AppSecret, name)
        if found is not None:
            return found.value
        session.add(AppSecret(name=name, value=secrets.token_urlsafe(48)))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
        found = session.get(AppSecret, name)
        assert found is not None
        return found.value


def _secret_key(app: Flask, factory: sessionmaker[Session], settings: Settings) -> str | None:
    """The configured key, else the stored one; None while the database is unreachable."""
    if settings.web.secret_key:
        return settings.web.secret_key
    try:
        return stored_secret(factory, SESSION_SECRET)
    except SQLAlchemyError:
        log.warning("web UI: database unreachable, session key deferred", exc_info=True)
        return None


def init_app(app: Flask, factory: sessionmaker[Session], settings: Settings) -> None:
    """Configure the app; a database that is down at start-up does not stop the UI from
    starting (``/healthz`` must answer), the key is then read at the first request."""

    def ensure_secret() -> None:
        if not app.secret_key:
            app.secret_key = _secret_key(app, factory, settings)

    app.config.update(
        SECRET_KEY=_secret_key(app, factory, settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,  # decided per response: see _SessionInterface
        SESSION_COOKIE_NAME="mailgate_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session instead: a long form still posts
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
    )
    app.before_request(ensure_secret)
    csrf.init_app(app)
    app.after_request(_add_security_headers)
    base_url = hosts.BaseUrlCache(factory)
    app.extensions["mailgate"]["base_url"] = base_url
    app.session_interface = _SessionInterface()
    hosts.wrap(app, settings, base_url)
    app.jinja_env.globals.update(base_url_missing=_base_url_missing)


def _base_url_missing() -> bool:
    """For the admin's notice on every page: mails carry no links, reset is off."""
    from .context import dealer

    if not (getattr(current_user, "is_authenticated", False) and current_user.is_admin):
        return False
    return not dealer().base_url


def base_url_of(app: Flask) -> str:
    """The dealer's base URL as the web UI knows it (re-read every few seconds)."""
    cache: hosts.BaseUrlCache = app.extensions["mailgate"]["base_url"]
    return cache.get()


def _current_base_url(app: Flask) -> str:
    """In a request that has its database session, read through that session: a second
    connection would wait for the SQLite write lock the first one may hold."""
    if has_request_context() and "db" in g:
        return stored_base_url(g.db)
    return base_url_of(app)


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` when the request came over TLS, or asks for the
    host of an https base URL (a setting in the database, so it may change while the UI
    runs) — behind a TLS proxy that is the public name even if the last hop is plain.

    A request to another allowed name over plain http — an operator on the server
    opening ``http://127.0.0.1:8025`` — gets a cookie without ``Secure``: scoped to that
    name, it can never travel to the public host, and with ``Secure`` the browser would
    drop it and every form would fail its CSRF check.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        base = _current_base_url(app)
        if not has_request_context():
            return base.lower().startswith("https://")
        if request.is_secure:
            return True
        asked = (urlsplit(f"//{request.host}").hostname or "").lower()
        return base.lower().startswith("https://") and asked == host_of(base)


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
