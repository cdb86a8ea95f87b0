"""Dashboard area: the supervisor's and admin's landing page — the team's state on one page
(per salesperson open / overdue / due today / first response; today's intake by source; pool
and unassigned; escalations today), each number a link to the filtered lead list."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from .. import nav
from . import views


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    nav.register(
        app, nav.NavEntry("dashboard.overview", _l("Overview"), ("supervisor", "admin"), order=3)
    )


__all__ = ["init_app"]
