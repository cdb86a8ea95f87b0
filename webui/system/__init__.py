"""System area (admins): is mail flowing? Listener, relay, IMAP mailboxes, last mail received,
queue sizes and ``doctor``'s findings on one page.

It also brings the set-up checklist (:mod:`mailgate.webui.onboarding`): both are the admin's
view of whether mail can flow, and registering it here keeps the app factory unchanged.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from .. import nav, onboarding
from . import views


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    nav.register(app, nav.NavEntry("system.status", _l("System"), ("admin",), order=90))
    onboarding.init_app(app)


__all__ = ["init_app"]
