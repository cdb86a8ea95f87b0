"""The overview page (filled in by the dashboard work of issue 21)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from ..access import roles_required

bp = Blueprint("dashboard", __name__, url_prefix="/overview")


@bp.route("/")
@roles_required("supervisor", "admin")
def overview() -> ResponseReturnValue:
    return render_template("dashboard/overview.html")
