"""The system page (filled in by the set-up work of issue 21)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from ..access import admin_required

bp = Blueprint("system", __name__, url_prefix="/system")


@bp.route("/")
@admin_required
def status() -> ResponseReturnValue:
    return render_template("system/status.html")
