"""Shared by the settings pages: load, change, validate and save the document.

A page works on a deep copy of the stored document, changes its own keys and
hands the whole document to :func:`apply_document`.  When that refuses, the
message names the key (``dealer.timezone: ...``); :func:`attach_error` puts it
next to the input for that key, in plain words, and nothing is saved.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import Field

from mailgate.dealer_settings import SettingsError, apply_document, stored_document

from ..access import me
from ..context import db

bp = Blueprint("settings", __name__, url_prefix="/settings")

# Settings pages in menu order: (endpoint, label msgid) — the sub-navigation.
PAGES = (
    ("settings.general", "General"),
    ("settings.hours", "Working hours"),
    ("settings.holidays", "Holidays"),
    ("settings.escalation", "Escalation"),
    ("settings.distribution", "Distribution"),
    ("settings.users", "Users"),
    ("settings.mailboxes", "Mailboxes"),
    ("settings.reasons", "Completion reasons"),
    ("settings.feedback", "Status feedback"),
    ("settings.templates", "Mail templates"),
    ("settings.answers", "Answers to customers"),
    ("settings.integrations", "Integrations"),
    ("settings.transfer", "Import / export"),
)


def load() -> dict[str, Any]:
    """A private, changeable copy of the stored (validated) settings document."""
    return copy.deepcopy(stored_document(db()))


class LockoutError(SettingsError):
    """The change would lock the admin making it out of the settings."""


def check_not_locking_out(document: Mapping[str, Any], email: str) -> None:
    """Refuse a document in which ``email`` is missing, inactive or no longer an admin."""
    entry = next(
        (u for u in document.get("users", []) if str(u.get("email", "")).lower() == email), None
    )
    if entry is None or not entry.get("active", True):
        raise LockoutError(
            _(
                "This would deactivate your own account (%(email)s) and lock you out. "
                "Keep yourself active, or let another admin make this change.",
                email=email,
            )
        )
    if entry.get("role", "salesperson") != "admin":
        raise LockoutError(
            _(
                "This would take the admin role from your own account (%(email)s) "
                "and lock you out of the settings.",
                email=email,
            )
        )


def save(document: dict[str, Any]) -> dict[str, Any]:
    """Validate and store ``document``; commit on success, roll back on any refusal."""
    try:
        check_not_locking_out(document, me().email)
        clean = apply_document(db(), document)
    except Exception:
        db().rollback()
        raise
    db().commit()
    # Every page that saves may change the base URL: the host check follows at once.
    current_app.extensions["mailgate"]["base_url"].forget()
    return clean


# Validator messages, English and technical, turned into plain words per pattern.
_PLAIN: tuple[tuple[re.Pattern[str], Any], ...] = (
    (re.compile(r"not (?:a plain |an )e-mail address"), _l("This is not an e-mail address.")),
    (re.compile(r"unknown time zone"), _l("Unknown time zone: pick one from the list.")),
    (re.compile(r"not a duration"), _l("Write a duration like 4h, 90m, 1h30m or 2d.")),
    (re.compile(r"not an interval|interval ends before"), _l("Write times like 08:00-12:00.")),
    (re.compile(r"intervals of one day overlap"), _l("Two opening times of one day overlap.")),
    (re.compile(r"unknown holiday region"), _l("There is no holiday list for this region.")),
    (re.compile(r"must be a date"), _l("Write a date like 2026-12-24 or 2026-12-24..2026-12-31.")),
    (re.compile(r"no user "), _l("There is no active user with this address.")),
    (re.compile(r"duplicate"), _l("This name or address is used twice.")),
    (re.compile(r"required when mode"), _l("Pool mode needs a pool account.")),
    (re.compile(r"cannot substitute himself"), _l("Nobody can be his own substitute.")),
    (
        re.compile(r"base_url(?:: not a URL| must start with https://| must not carry a query)"),
        _l("Write the web address like https://leads.autohaus.example."),
    ),
)


def plain(message: str) -> str:
    """The validator's message in the user's language where we know the pattern.

    The original (which names the key) is kept after it, so nothing is lost.
    """
    for pattern, msgid in _PLAIN:
        if pattern.search(message):
            return f"{msgid} ({message})"
    return message


def attach_error(message: str, fields: Mapping[str, Field]) -> bool:
    """Put ``message`` on the field whose settings key it names; False if none matches.

    ``fields`` maps key paths (``dealer.timezone``, ``hours.mon``) to form fields;
    the longest path that the message mentions wins.
    """
    for path in sorted(fields, key=len, reverse=True):
        if re.search(rf"(^|[\s\[]){re.escape(path)}(?!\w)", message):
            field = fields[path]
            field.errors = [*list(field.errors or []), plain(message)]
            return True
    return False
