"""A busy database: the request is tried once more, then answered "try again", never 500.

Why: SQLite has one write lock.  Web writes wait for it (see
:mod:`mailgate.db`: they start ``BEGIN IMMEDIATE`` before their first write),
but a wait can still run out: a backup, a bulk command, a stuck process.  On
PostgreSQL a deadlock or a serialization failure ends a transaction at once.
Either way the transaction was rolled back as a whole, so a request that has
not committed anything yet may simply run again: it is retried once, on a new
session.  If that fails too, or something was already committed (running again
could do it twice), the person gets a page in their language that says the
database is busy and nothing broke (HTTP 503 with ``Retry-After``; a problem
document under ``/api/``), and the log gets one line instead of a traceback.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from flask import Flask, g, has_request_context, make_response, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .api.problems import problem

log = logging.getLogger("mailgate.webui")

RETRY_AFTER_SECONDS = 5
# SQLite's primary result codes for "another connection has the lock".
SQLITE_BUSY, SQLITE_LOCKED = 5, 6
# PostgreSQL: serialization failure, deadlock, lock not available (NOWAIT / lock_timeout).
BUSY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_busy(exc: BaseException) -> bool:
    """True for a lock or serialization error: the same work may succeed a moment later."""
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
        return "database is locked" in str(orig) or "database table is locked" in str(orig)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return sqlstate in BUSY_SQLSTATES


def init_app(app: Flask) -> None:
    """Retry-once around every view and the 503 page for what still fails."""
    factory: sessionmaker[Session] = app.extensions["mailgate"]["factory"]
    if not event.contains(factory, "after_commit", _note_commit):
        event.listen(factory, "after_commit", _note_commit)
    view = app.dispatch_request

    def dispatch_with_one_retry() -> ResponseReturnValue:
        try:
            return view()
        except OperationalError as exc:
            if not is_busy(exc) or g.get("mailgate_committed"):
                raise
            log.info(
                "database busy during %s %s (%s); running the request once more",
                request.method,
                request.path,
                _reason(exc),
            )
            _fresh_session()
            return view()

    app.dispatch_request = dispatch_with_one_retry  # type: ignore[method-assign]
    app.register_error_handler(OperationalError, _busy_page)


def _note_commit(_session: Session) -> None:
    """Something of this request is committed: running the request again could repeat it."""
    if has_request_context():
        g.mailgate_committed = True


def _fresh_session() -> None:
    """Roll back and drop the request's session; the next ``db()`` opens a new one."""
    session: Any = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()


def _reason(exc: OperationalError) -> str:
    orig = exc.orig
    name = getattr(orig, "sqlite_errorname", None) or getattr(orig, "sqlstate", None)
    return f"{name}: {orig}" if name else str(orig)


def _busy_page(exc: OperationalError) -> ResponseReturnValue:
    """503 and ``Retry-After`` for a busy database; any other OperationalError stays a 500."""
    if not is_busy(exc):
        raise exc  # Flask answers it as before: logged with its traceback, the 500 page
    _fresh_session()
    log.warning(
        "database busy: %s %s answered 503 (%s)", request.method, request.path, _reason(exc)
    )
    if request.path.startswith("/api/"):
        response = problem(503, "Service Unavailable", "The database is busy; try again.")
    else:
        saved = bool(g.get("mailgate_committed"))
        page = render_template("busy/page.html", form=request.method != "GET", saved=saved)
        response = make_response(page, 503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
