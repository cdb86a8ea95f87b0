"""Live parts of the frame: the overdue count beside "Leads" in the menu.

The frame renders the badge with the page (no extra request on load); htmx then
asks ``/live/overdue`` every 30 seconds and swaps the fragment in, so a lead
that turns overdue shows up in the menu without a reload.  The count is of the
leads the user may see (:func:`.access.lead_scope`) in the due state
"overdue" (:func:`.leads.due.state_condition`), i.e. exactly the rows the
badge's link, the list filtered by "overdue", shows.

A poll after the session ended must not swap the login page into the menu:
htmx asks with ``HX-Request``; such a request without a login gets 286, htmx's
"stop polling", with an empty body (the badge disappears).  Any other
anonymous request goes to the login page like every page.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from mailgate.models import Lead, utcnow

from .access import lead_scope, me
from .context import db
from .leads.due import state_condition

log = logging.getLogger("mailgate.webui")
bp = Blueprint("live", __name__)
POLL_SECONDS = 30
HTMX_STOP_POLLING = 286


def overdue_count() -> int:
    """Overdue leads in the logged-in user's scope (0 before login)."""
    if not getattr(current_user, "is_authenticated", False):
        return 0
    try:  # the scope reads the team and the pool user: inside too
        query = select(func.count(Lead.id)).where(
            lead_scope(me()), state_condition("overdue", utcnow())
        )
        return int(db().scalar(query) or 0)
    except SQLAlchemyError:  # the frame of the busy-database page: no badge, no second error
        log.info("overdue count skipped: the database did not answer", exc_info=True)
        return 0


@bp.route("/live/overdue")
def overdue() -> ResponseReturnValue:
    """The badge fragment (empty when nothing is overdue)."""
    if not current_user.is_authenticated:
        if request.headers.get("HX-Request") == "true":
            return "", HTMX_STOP_POLLING
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    response = make_response(render_template("_overdue_badge.html", count=overdue_count()))
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.update(overdue_count=overdue_count, live_poll_seconds=POLL_SECONDS)


__all__ = ["init_app", "overdue_count"]
