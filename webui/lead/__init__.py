"""One lead: the detail page, the original mail and the actions on it (area ``lead``)."""

from __future__ import annotations

from flask import Flask

from . import (  # noqa: F401 - these register routes on bp
    actions,
    attachments,
    compose,
    labels,
    manual,
)
from .views import bp


def init_app(app: Flask) -> None:
    labels.register()
    app.register_blueprint(bp)


__all__ = ["init_app"]
