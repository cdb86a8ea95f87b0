"""Refusals of the distribution actions (:class:`ActionError`), in the user's language.

The service functions raise English sentences with the facts in them; the
known ones are matched here and said again through gettext, the rest are
shown as they are (plain, never a server error).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _

from ..labels import label


def _patterns() -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    return [
        (
            re.compile(r"^only the oldest pool lead may be taken: lead (\d+)$"),
            lambda m: _("Only the oldest lead in the pool may be taken (lead %(id)s).", id=m[1]),
        ),
        (
            re.compile(r"^lead (\d+) was just taken by someone else$"),
            lambda m: _("Someone else has just taken lead %(id)s.", id=m[1]),
        ),
        (
            re.compile(r"^lead (\d+) is not in the pool"),
            lambda m: _("Lead %(id)s is no longer in the pool.", id=m[1]),
        ),
        (
            re.compile(r"^there is no pool"),
            lambda m: _("There is no pool: the distribution settings name no pool user."),
        ),
        (
            re.compile(r"^(\S+) cannot take leads from the pool$"),
            lambda m: _("%(user)s cannot take leads from the pool.", user=m[1]),
        ),
        (
            re.compile(r"^(\S+) cannot be assigned leads$"),
            lambda m: _("%(user)s cannot be assigned leads.", user=m[1]),
        ),
        (
            re.compile(r"^(\S+) may not see (\w+) leads of lead (\d+)$"),
            lambda m: _(
                "%(user)s may not see %(category)s leads (lead %(id)s).",
                user=m[1],
                category=m[2],
                id=m[3],
            ),
        ),
        (
            re.compile(r"^lead (\d+) is (\w+)$"),
            lambda m: _("Lead %(id)s is %(status)s.", id=m[1], status=label(m[2], "lead_status")),
        ),
        (re.compile(r"^no lead selected$"), lambda m: _("No lead selected.")),
    ]


def explain(error: Exception) -> str:
    """The refusal in the user's language (known cases) or as the service said it."""
    message = str(error)
    for pattern, say in _patterns():
        found = pattern.match(message)
        if found:
            return say(found)
    return message
