"""Settings (admins only): each page edits the stored settings document and saves it
through :func:`mailgate.dealer_settings.apply_document`, the same validation as
``mailgate settings import`` — there is no second, weaker validator here.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from .. import nav
from . import (  # noqa: F401 - each module adds its routes to bp
    answers,
    calendar_views,
    distribution,
    feedback,
    general,
    holiday_views,
    integrations,
    mailboxes,
    mailtemplates,
    people,
    reasons,
    sent_folders,
    transfer,
)
from .common import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    nav.register(app, nav.NavEntry("settings.general", _l("Settings"), ("admin",), order=80))


__all__ = ["init_app"]
