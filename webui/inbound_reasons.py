"""Why a received mail was discarded or kept aside, in the admin's language.

The worker stores the reason as an English sentence with the facts in it (logs
and the CLI read it too).  The known kinds are recognised here and said again
through gettext, keeping the technical detail (a header name, a parser's
warning) as it is; anything else - a traceback above all - is shown unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _

Say = Callable[[re.Match[str]], str]


def _patterns() -> list[tuple[re.Pattern[str], Say]]:
    return [
        (
            re.compile(r"^loop: "),
            lambda m: _("Mail loop: the mail was sent by mailgate itself."),
        ),
        (
            re.compile(r"^auto-reply: out-of-office subject$"),
            lambda m: _("Automatic reply (out-of-office subject)."),
        ),
        (
            re.compile(r"^auto-reply: (?P<detail>.+)$"),
            lambda m: _("Automatic reply (%(detail)s).", detail=m["detail"]),
        ),
        (
            re.compile(r"^bulk mail: (?P<detail>.+)$"),
            lambda m: _("Bulk mail (%(detail)s).", detail=m["detail"]),
        ),
        (re.compile(r"^spam: "), lambda m: _("Spam: marked by the upstream spam filter.")),
        (re.compile(r"^read receipt: "), lambda m: _("Read receipt.")),
        (
            re.compile(r"^bounce: (?P<detail>.+)$"),
            lambda m: _("Delivery failure notice (%(detail)s).", detail=m["detail"]),
        ),
        (
            re.compile(r"^duplicate of lead (?P<id>\d+)$"),
            lambda m: _("Duplicate: this mail already made lead %(id)s.", id=m["id"]),
        ),
        (
            re.compile(r"^duplicate of a mail attached to lead (?P<id>\d+)$"),
            lambda m: _("Duplicate: this mail is already attached to lead %(id)s.", id=m["id"]),
        ),
        (
            re.compile(r"^not parsed: (?P<detail>.+)$", re.S),
            lambda m: _("Not read: %(detail)s", detail=m["detail"]),
        ),
        (
            re.compile(r"^no lead could be made: (?P<detail>.+)$", re.S),
            lambda m: _("No lead could be made: %(detail)s", detail=m["detail"]),
        ),
        (
            re.compile(r"^call-centre notice for unknown lead (?P<ref>\S+)$"),
            lambda m: _(
                "Call-centre notice for lead %(ref)s of the source, which is unknown here.",
                ref=m["ref"],
            ),
        ),
        (
            re.compile(r"^call-centre notice for lead (?P<ref>\S+) failed authentication$"),
            lambda m: _(
                "Call-centre notice for lead %(ref)s failed the sender check.", ref=m["ref"]
            ),
        ),
        (
            re.compile(r"^(?P<source>\S+) call centre took lead (?P<ref>\S+) over$"),
            lambda m: _(
                "The call centre of %(source)s took its lead %(ref)s over.",
                source=m["source"],
                ref=m["ref"],
            ),
        ),
        (
            re.compile(r"^reply to unknown lead (?P<id>\d+)$"),
            lambda m: _("A reply to lead %(id)s, which does not exist.", id=m["id"]),
        ),
        (
            re.compile(r"^tracking address of lead (?P<id>\d+) with a wrong token$"),
            lambda m: _("Lead %(id)s's tracking address with a wrong key.", id=m["id"]),
        ),
        (
            re.compile(r"^reply from (?P<who>\S+) failed (?P<check>.+): not counted$"),
            lambda m: _(
                "Reply from %(who)s failed the sender check (%(check)s): not counted as an answer.",
                who=m["who"],
                check=m["check"],
            ),
        ),
        (
            re.compile(
                r"^mail to lead (?P<id>\d+)'s tracking address from (?P<who>\S+), "
                r"who is neither staff nor the lead's customer$"
            ),
            lambda m: _(
                "Mail to lead %(id)s's tracking address from %(who)s, who is neither a colleague "
                "nor the lead's customer.",
                id=m["id"],
                who=m["who"],
            ),
        ),
        (
            re.compile(r"^lead (?P<id>\d+): (?P<count>\d+) relays in the last hour"),
            lambda m: _(
                "Lead %(id)s: %(count)s mails relayed within an hour; "
                "stopped to break a mail loop.",
                id=m["id"],
                count=m["count"],
            ),
        ),
    ]


def explain_reason(reason: str | None) -> str:
    """The stored reason in the user's language where it is a known kind; else as stored."""
    if not reason:
        return ""
    for pattern, say in _patterns():
        found = pattern.search(reason)
        if found:
            return say(found)
    return reason
