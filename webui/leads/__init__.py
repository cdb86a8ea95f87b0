"""Leads area: the lead list (home page) with search, filters, bulk reassign, CSV; the pool;
"my day" (a salesperson's leads in the order to work them).

The detail page of one lead is its own area (``lead``).
"""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from .. import nav
from ..context import pool_configured
from . import live, my_day, views
from . import pool as pool_views
from .due import state_label


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(pool_views.bp)
    app.register_blueprint(my_day.bp)
    app.jinja_env.filters["due_label"] = state_label
    nav.register(app, nav.NavEntry("my_day.my_day", _l("My day"), order=5))
    nav.register(app, nav.NavEntry("leads.lead_list", _l("Leads"), order=10))
    nav.register(app, nav.NavEntry("pool.pool", _l("Pool"), order=15, visible=pool_configured))


__all__ = ["init_app"]
