"""One lead: the detail page and the actions on it (area ``lead``)."""

from __future__ import annotations

from flask import Flask

from .views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


__all__ = ["init_app"]
