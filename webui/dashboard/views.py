"""The overview page and its live fragment.

The page renders the figures at once; htmx then asks ``/overview/live`` every
:data:`POLL_SECONDS` and swaps the whole figures block (``outerHTML``: the block
carries its own ``hx-get``, so polling goes on).  A poll after the session ended
gets 286, htmx's "stop polling", instead of a login page inside the overview;
a salesperson gets 403 on both URLs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_login import current_user

from mailgate.models import utcnow

from ..access import lead_scope, me, pool_user_id, roles_required
from ..context import db, dealer
from ..labels import label
from . import figures

bp = Blueprint("dashboard", __name__, url_prefix="/overview")
POLL_SECONDS = 45
HTMX_STOP_POLLING = 286
ROLES = ("supervisor", "admin")

F = TypeVar("F", bound=Callable[..., Any])


def stop_polling_when_logged_out(view: F) -> F:
    """An htmx poll without a session: 286 and nothing to swap (not the login page)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated and request.headers.get("HX-Request") == "true":
            return Response(status=HTMX_STOP_POLLING)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _overview() -> figures.Overview:
    session, config, account = db(), dealer(), me()
    ctx = figures.Context(
        session=session,
        scope=lead_scope(account, session),
        now=utcnow(),
        zone=config.timezone,
        region=config.document["dealer"].get("country") or "DE",
        dialect=session.get_bind().dialect.name,
    )
    return figures.build(ctx, account, config, pool_user_id(session))


def _hours(value: float | None) -> str:
    """Working hours as the reports write them (``1,5``), "–" for no answered lead."""
    return "–" if value is None else format_decimal(round(value, 1), format="#,##0.0")


def _context() -> dict[str, Any]:
    return {
        "overview": _overview(),
        "poll_seconds": POLL_SECONDS,
        "hours": _hours,
        "source_label": lambda code: label(code, "source") if code else label("unknown", "source"),
        "updated": utcnow(),
    }


@bp.route("/")
@roles_required(*ROLES)
def overview() -> ResponseReturnValue:
    return render_template("dashboard/overview.html", **_context())


@bp.route("/live")
@stop_polling_when_logged_out
@roles_required(*ROLES)
def live() -> ResponseReturnValue:
    """The figures block alone, for htmx's poll."""
    response = make_response(render_template("dashboard/_figures.html", **_context()))
    response.headers["Cache-Control"] = "no-store"
    return response
