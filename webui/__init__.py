"""The web UI: a Flask app factory with one blueprint per area.

Today it is a read-only view of what arrived and what became of it; logins,
actions and settings pages come with the web UI issue.
"""

from .app import create_app

__all__ = ["create_app"]
