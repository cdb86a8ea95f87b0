"""The one base URL: where mailgate's web UI is reached, for every link in a mail.

It is the dealer setting ``[dealer] base_url`` (stored in the database, so every
process and instance builds the same links, and the web UI edits it).  Links are
never built from a request's ``Host`` header: a forged Host would otherwise put
the attacker's server into a password-reset mail.  Without a base URL, features
that mail links refuse (password reset, invitations) and staff mails carry none.

The process setting ``[web] base_url`` is a deprecated alias for one release:
:func:`adopt_legacy_base_url` copies it over at start-up.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.models import DealerSetting

log = logging.getLogger("mailgate.config")

WHAT_TO_SET = (
    'set the dealer setting base_url (e.g. base_url = "https://leads.autohaus.example" in the '
    "[dealer] section of the settings file, then mailgate settings import FILE.toml; or in the "
    "web UI: Settings -> General)"
)


def stored_base_url(session: Session) -> str:
    """The dealer's base URL without a trailing slash; '' when unset or unusable.

    Reads the one row, not the whole validated document: the web UI's host check
    asks for it outside any request.
    """
    from mailgate.config import check_base_url

    row = session.get(DealerSetting, "dealer")
    value = (row.data or {}).get("base_url", "") if row is not None else ""
    if not isinstance(value, str) or not value:
        return ""
    if check_base_url("dealer.base_url", value):
        return ""  # stored before it was validated; doctor names the problem
    return value.rstrip("/")


def host_of(base_url: str) -> str:
    """The host name of a base URL, lower-case ('' for none)."""
    return (urlsplit(base_url).hostname or "").lower() if base_url else ""


def set_base_url(session: Session, url: str) -> None:
    """Store ``url`` as the dealer's base URL, keeping every other dealer key (no commit)."""
    row = session.get(DealerSetting, "dealer")
    if row is None:
        session.add(DealerSetting(section="dealer", data={"base_url": url}))
    else:
        row.data = {**(row.data or {}), "base_url": url}  # a new dict: JSON change tracking
    session.flush()


def adopt_legacy_base_url(session: Session, legacy: str, config_source: str = "") -> str:
    """Start-up: move a ``[web] base_url`` from the process config into the dealer setting.

    Copied once, when the dealer's own is empty; when both are set and differ, the
    dealer's wins.  Either way a warning says where the setting lives now.
    Returns the base URL in force (no commit).
    """
    current = stored_base_url(session)
    legacy = legacy.strip().rstrip("/")
    if not legacy:
        return current
    where = f" in {config_source}" if config_source else ""
    if not current:
        set_base_url(session, legacy)
        log.warning(
            "[web] base_url%s is deprecated: copied %s to the dealer setting [dealer] base_url "
            "(in the database, shared by every instance). Add base_url = %r to the [dealer] "
            "section of your settings file (or the next settings import clears it) and remove "
            "it from [web].",
            where,
            legacy,
            legacy,
        )
        return legacy
    if current != legacy:
        log.warning(
            "[web] base_url%s (%s) differs from the dealer setting [dealer] base_url (%s): "
            "using the dealer's. [web] base_url is deprecated; remove it.",
            where,
            legacy,
            current,
        )
    else:
        log.warning(
            "[web] base_url%s is deprecated and the same as [dealer] base_url: remove it.",
            where,
        )
    return current


def adopt_at_start(factory: sessionmaker[Session], settings: Settings) -> None:
    """``serve`` (every role) calls this after migrating: see :func:`adopt_legacy_base_url`."""
    if not settings.web.base_url:
        return
    from mailgate.db import session_scope

    with session_scope(factory) as session:
        adopt_legacy_base_url(session, settings.web.base_url, settings.source)
