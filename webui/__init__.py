"""The web UI: a Flask app factory with one blueprint per area (see :mod:`.app`)."""

from .app import create_app

__all__ = ["create_app"]
