"""Protocol wordings of the reply relay's trust decisions (see :mod:`mailgate.protocol`).

Kept next to the relay rather than in the core table so the relay's words
live with its rules; registered at import, extracted for the lead page's
German catalog (``CORE_SOURCES`` in :mod:`mailgate.webui.i18n`).
"""

from __future__ import annotations

from mailgate.protocol import N_, register

PHRASES: dict[str, str] = {
    "possible_answer_tag": N_(
        "possible answer from {sender} (subject tag, no reply address): not counted, not relayed"
    ),
    "possible_answer_cc": N_(
        "possible answer from {sender} to {to} (lead mailbox only in copy): "
        "not counted, not relayed"
    ),
    "possible_answer_previous": N_(
        "possible answer from {sender} with the reply address of {user}, no longer the "
        "assignee: not counted, not relayed"
    ),
    "possible_answer_not_allowed": N_(
        "possible answer from {sender}, who may not act on this lead: not counted, not relayed"
    ),
    "unknown_sender": N_(
        "message from {sender}, an address not on file, passed to {user}: not counted"
    ),
    "reply_confirmed": N_("answer from {sender} confirmed by {user}"),
    "relay_too_large": N_(
        "message from {sender} not relayed: {size_mb} MB, the limit is {limit_mb} MB; "
        "the sender was told"
    ),
    "reply_kept_aside": N_(
        "mail from {sender} to the reply address kept aside: {why}; {user} told"
    ),
    "why_auth": N_("our mail server's sender check failed ({check})"),
    "why_sender": N_("no single sender address"),
    "why_automatic": N_("automatic mail"),
    "why_loop": N_("too many relays in an hour (mail loop)"),
    "why_token": N_("wrong or outdated reply address"),
}
register(PHRASES)
