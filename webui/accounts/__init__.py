"""Accounts: Flask-Login set-up and the login / setup / reset / own-account pages."""

from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager

from ..access import load_account
from .first_admin import needs_setup
from .views import bp


def _unauthorized() -> ResponseReturnValue:
    if needs_setup():
        return redirect(url_for("accounts.setup"))
    return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    manager.user_loader(load_account)
    manager.unauthorized_handler(_unauthorized)
    manager.login_message = _l("Please log in.")
    manager.session_protection = "basic"
    app.register_blueprint(bp)


__all__ = ["init_app"]
