"""The main menu: each area registers its entries with the roles that may see them.

The menu only mirrors the access rules (every route checks them itself); it is
built from registrations so areas can be added without editing the frame.  An
entry may also depend on the dealer's set-up (``visible``: e.g. the pool only
exists when a pool user is configured), so the menu never offers a page that
can only say "there is nothing here".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from flask_login import current_user


@dataclass(frozen=True)
class NavEntry:
    endpoint: str
    label: object  # a lazy_gettext string
    roles: tuple[str, ...] = ("salesperson", "supervisor", "admin")
    order: int = 50
    # Asked per request, after the role check; None: always shown.
    visible: Callable[[], bool] | None = None


def register(app: Flask, entry: NavEntry) -> None:
    entries: list[NavEntry] = app.extensions["mailgate"].setdefault("nav", [])
    entries.append(entry)
    entries.sort(key=lambda e: (e.order, e.endpoint))


def entries_for_current_user(app: Flask) -> list[NavEntry]:
    if not getattr(current_user, "is_authenticated", False):
        return []
    return [
        e
        for e in app.extensions["mailgate"].get("nav", [])
        if current_user.role in e.roles and (e.visible is None or e.visible())
    ]
