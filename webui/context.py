"""Per-request resources: the database session and the dealer's settings.

The web UI shares the session factory of the rest of mailgate (no
Flask-SQLAlchemy, no globals): the factory lives in ``app.extensions`` and a
session is opened on first use in a request, so static files never touch the
database.  The dealer settings are read at most once per request.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.dealer_settings import DealerConfig, SettingsError, load_dealer_config


def factory() -> sessionmaker[Session]:
    return current_app.extensions["mailgate"]["factory"]


def settings() -> Settings:
    return current_app.extensions["mailgate"]["settings"]


def db() -> Session:
    """The request's session: opened on first use, closed when the request ends."""
    if "db" not in g:
        g.db = factory()()
    return g.db


def dealer() -> DealerConfig:
    """The dealer settings as of this request (one read per request)."""
    if "dealer" not in g:
        g.dealer = load_dealer_config(db())
    return g.dealer


def close_session(_exc: BaseException | None) -> None:
    session: Any = g.pop("db", None)
    if session is not None:
        session.close()


def pool_configured() -> bool:
    """Whether the dealer has a pool (a pool user in the distribution settings): the menu
    shows "Pool" only then."""
    try:
        return bool(dealer().document["distribution"].get("pool_user"))
    except SQLAlchemyError:  # the busy-database page's frame: leave the entry out
        return False


def dealer_name() -> str:
    """The dealership's name for the page header and title, "mailgate" until one is set.

    The frame is also rendered for the busy-database and error pages, so a database that
    cannot answer gives the fallback rather than a second error.
    """
    try:
        return dealer().name.strip() or "mailgate"
    except (SQLAlchemyError, SettingsError):  # a stored document that no longer validates too
        return "mailgate"
