"""Reports: leads per source and kind, response times, answered before stage 1, won/lost.

Everyone sees the figures of the leads they may see (:func:`..access.lead_scope`):
a salesperson his own, a supervisor his team's, an admin all.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from .. import nav
from .views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    nav.register(app, nav.NavEntry("reports.index", _l("Reports"), order=40))
