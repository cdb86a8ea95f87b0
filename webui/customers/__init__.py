"""Customers area: the customer file (search, a customer's leads and conversation, merge,
moving a lead to another customer, and the "please check" tasks of fuzzy matches)."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from .. import nav
from . import views


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    nav.register(app, nav.NavEntry("customers.customer_list", _l("Customers"), order=12))


__all__ = ["init_app"]
