"""Flask app factory: security, accounts, languages, and one blueprint per area.

The web UI calls the same service functions as the CLI and shares the
session factory of the rest of mailgate (see :mod:`.context`).  Every area is
a module with an ``init_app(app)`` that registers its blueprint and its menu
entries (:mod:`.nav`); ``AREAS`` lists them.
"""

from __future__ import annotations

import logging
from types import ModuleType

from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from mailgate.config import Settings

from . import (
    accounts,
    api,
    branding,
    busy,
    customers,
    dashboard,
    i18n,
    inbound,
    input_limits,
    lead,
    lead_import,
    leads,
    live,
    nav,
    outbox,
    reports,
    security,
    signed,
    system,
)
from . import settings as settings_area
from .context import close_session, db, dealer_name
from .labels import VEHICLE_FIELDS, label, vehicle_value

log = logging.getLogger("mailgate.webui")

# Areas in menu order; each has init_app(app).
AREAS: tuple[ModuleType, ...] = (
    dashboard,
    leads,
    lead,
    lead_import,
    customers,
    inbound,
    reports,
    outbox,
    settings_area,
    system,
    signed,
    api,
    live,
    branding,
)


def create_app(factory: sessionmaker[Session], settings: Settings) -> Flask:
    """Build the app around an existing session factory, so tests and ``serve`` share one."""
    app = Flask(__name__)
    input_limits.init_app(app)  # first: the bounded <int:…> converter for every rule
    app.extensions["mailgate"] = {"factory": factory, "settings": settings, "nav": []}
    security.init_app(app, factory, settings)
    i18n.init_app(app)
    accounts.init_app(app)
    app.add_url_rule("/", "home", _home)
    app.add_url_rule("/healthz", "healthz", _healthz)
    for area in AREAS:
        area.init_app(app)
    app.teardown_appcontext(close_session)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _error_page)
    busy.init_app(app)  # a busy database: one retry, then 503 "try again", never a 500
    app.jinja_env.filters.update(label=label, value=vehicle_value)
    app.jinja_env.globals.update(
        VEHICLE_FIELDS=VEHICLE_FIELDS,
        nav_entries=lambda: nav.entries_for_current_user(app),
        dealer_name=dealer_name,
    )
    return app


def _home() -> ResponseReturnValue:
    """Salespeople land on *My day*, supervisors and admins on the team overview; before
    login, the login page."""
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login"))
    if current_user.role in ("supervisor", "admin"):
        return redirect(url_for("dashboard.overview"))
    return redirect(url_for("my_day.my_day"))


def _error_page(exc: HTTPException) -> ResponseReturnValue:
    """Error pages in the site's frame and the user's language instead of werkzeug's."""
    if request.path.startswith("/api/"):
        return api.problem_for(exc)  # an integration reads JSON, not a page
    return render_template("error.html", error=exc), exc.code or 500


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    log.info("refused a form post without a valid CSRF token: %s", exc.description)
    return render_template("error.html", error=exc, csrf=True), 400


def _healthz() -> ResponseReturnValue:
    """For load balancers and ``serve``'s own checks: is the database answering?"""
    try:
        db().execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - the probe says "error"; the log gets the details
        log.warning("health check: database query failed", exc_info=True)
        return jsonify(status="error", database="error"), 503
    return jsonify(status="ok", database="ok")
