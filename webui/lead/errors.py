"""Refusals of the service functions in the user's language.

The service functions raise ``ActionError`` with an English message meant for
logs and the CLI.  A salesperson reads the page in German, so the refusals
the lead page can provoke are recognised here and said in plain words; an
unknown message is shown as it is (better English than nothing).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _

from ..labels import label


def _status(match: re.Match[str]) -> str:
    return _("The lead is %(status)s.", status=label(match["status"], "lead_status"))


PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(r"^a resubmission date lies in the future$"),
        lambda m: _("The resubmission date must lie in the future."),
    ),
    (
        re.compile(r"^the new due date lies in the future$"),
        lambda m: _("The new due date must lie in the future."),
    ),
    (
        re.compile(r"^only the oldest pool lead may be taken: lead (?P<id>\d+)$"),
        lambda m: _("Only the oldest lead in the pool may be taken: lead %(id)s.", id=m["id"]),
    ),
    (
        re.compile(r"^lead \d+ was just taken by someone else$"),
        lambda m: _("A colleague has just taken this lead."),
    ),
    (
        re.compile(r"^lead \d+ is not in the pool"),
        lambda m: _("This lead is no longer in the pool."),
    ),
    (
        re.compile(r"^(?P<who>\S+) cannot be assigned leads$"),
        lambda m: _("%(who)s cannot be assigned leads.", who=m["who"]),
    ),
    (
        re.compile(r"^(?P<who>\S+) may not see (?P<category>\w+) leads"),
        lambda m: _("%(who)s may not see leads of this kind.", who=m["who"]),
    ),
    (
        re.compile(r"^(?P<who>\S+) cannot take leads from the pool$"),
        lambda m: _("You cannot take leads from the pool."),
    ),
    (
        re.compile(r"^lead \d+ was taken over by the source's call centre$"),
        lambda m: _("The source's call centre has taken this lead over: it is read-only."),
    ),
    (
        re.compile(r"^lead \d+ has no previous owner who can take it$"),
        lambda m: _("The previous salesperson cannot take leads: hand it to the distribution."),
    ),
    (
        re.compile(r"^lead \d+: the distribution found nobody to take it$"),
        lambda m: _("The distribution found nobody who can take this lead."),
    ),
    (
        re.compile(r"^lead \d+ is not with the call centre$"),
        lambda m: _("This lead is not with the call centre."),
    ),
    (
        re.compile(r"^hand back to one of "),
        lambda m: _("Please choose to whom the lead goes back."),
    ),
    (
        re.compile(r"^lead \d+ is already at (?P<status>\w+)$"),
        lambda m: _(
            "The lead already has the status %(status)s.",
            status=label(m["status"], "lead_status"),
        ),
    ),
    (re.compile(r"^lead \d+ is (?P<status>\w+)(:.*)?$"), _status),
    (
        re.compile(r"^(?P<field>\w+): '(?P<value>.*)' is not a number$"),
        lambda m: _("%(value)s is not a number.", value=m["value"]),
    ),
    (
        re.compile(r"^email: .* is not an e-mail address$"),
        lambda m: _("The e-mail address is not valid."),
    ),
)


def explain(message: str) -> str:
    for pattern, say in PATTERNS:
        match = pattern.search(message)
        if match:
            return say(match)
    return message
