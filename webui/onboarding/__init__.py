"""Set-up in the browser (issue 21): the checklist after the first admin, the relay's test
mail, invitations, and the banner that sends admins to the checklist while steps are open."""

from __future__ import annotations

from flask import Flask

from . import views


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    # The frame includes templates/setup_banner.html, which asks this for the open steps.
    app.jinja_env.globals.update(setup_open_steps=views.setup_open_steps)


__all__ = ["init_app"]
