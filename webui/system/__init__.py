"""System area (admins): is mail flowing? Listener, relay, IMAP mailboxes, last mail received,
queue sizes and ``doctor``'s findings on one page."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from .. import nav
from . import views


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    nav.register(app, nav.NavEntry("system.status", _l("System"), ("admin",), order=90))


__all__ = ["init_app"]
