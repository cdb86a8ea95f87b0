"""The lead list's live parts: htmx asks every 30 s whether new leads arrived, and on a click
fetches the fresh table.

The poll only ever returns a notice ("3 neue Anfragen – anzeigen"), never the rows:
someone ticking leads for a bulk action must not lose the ticks to a timer.  Both
endpoints read the same query string as the list (filters, sort, page), so the notice
counts and the table shows only what the list itself would show — the user's lead
scope AND the filter.  Without a session a fragment never shows the login page
(:mod:`.fragments`).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from mailgate.models import Lead, utcnow

from ..context import db
from ..input_limits import DB_INT_MAX
from .filters import parse
from .fragments import fragment_login
from .views import lead_where, table, table_context

bp = Blueprint("leads_live", __name__)
POLL_SECONDS = 30  # the templates' hx-trigger says the same
NEWS_CAP = 99  # "99+": the notice needs no exact count of a flood


def _after() -> int:
    raw = request.args.get("after", "")
    if not (raw.isascii() and raw.isdigit()) or int(raw) > DB_INT_MAX:
        abort(400)
    return int(raw)


def newer(after: int) -> int:
    """How many leads in scope and filter came after lead ``after`` (up to NEWS_CAP + 1)."""
    where = lead_where(parse(request.args), utcnow())
    found = select(Lead.id).where(where, Lead.id > after).limit(NEWS_CAP + 1).subquery()
    return db().scalar(select(func.count()).select_from(found)) or 0


@bp.route("/leads/updates")
@fragment_login(poll=True)
def updates() -> ResponseReturnValue:
    """The notice of new leads, or 204 (nothing to swap) while there are none."""
    after = _after()
    count = newer(after)
    if not count:
        return Response(status=204)
    filters = parse(request.args)
    return render_template(
        "leads/_news.html",
        count=count,
        capped=count > NEWS_CAP,
        args=filters.args(),
        page_number=request.args.get("page", 1, type=int) or 1,
        swap=request.args.get("swap") == "1",
    )


@bp.route("/leads/table")
@fragment_login()
def fresh_table() -> str:
    """The table of the list's current page, plus count, pager and a reset notice (OOB)."""
    filters = parse(request.args)
    return render_template("leads/_table_live.html", **table_context(filters, table(filters)))


__all__ = ["POLL_SECONDS", "bp", "newer"]
