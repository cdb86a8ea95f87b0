"""Lead import from a CSV file (area ``lead_import``; seed 004's standard import)."""

from __future__ import annotations

from flask import Flask

from .views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


__all__ = ["init_app"]
