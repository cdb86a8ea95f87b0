"""The REST API (``/api/v1``): leads for a DMS or CRM, with token auth and an OpenAPI document.

JSON in and out, ``Authorization: Bearer <token>`` per integration (tokens
are made on the settings page *Integrations*), scopes ``read`` and ``write``.
No session and no CSRF token: a request carries its credential itself, and a
browser never sends a bearer token on its own, so cross-site requests cannot
act.  Errors are ``application/problem+json`` (RFC 9457).
"""

from __future__ import annotations

from flask import Flask

from ..security import csrf
from .problems import problem_for
from .views import bp


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)


__all__ = ["init_app", "problem_for"]
