"""The one subject a customer sees for a lead's conversation.

Why not the reply's own subject: a salesperson answers whatever mail is in
front of him — the notification, a reminder, the overdue escalation — and
his client makes ``AW: [Lead 9] Überfällig: Anfrage von … wartet seit 4 Std.``
of it.  That is an internal text.  So the relay never looks at the reply's
subject: it takes the conversation's subject (the subject of the customer's
original inquiry, with every ``Re:``/``AW:``/``WG:`` removed; where it has none,
"Ihre Anfrage bei <Autohaus>: <vehicle>", the acknowledgement's wording) and
puts "AW:" (German) or "Re:" (English) in front of it once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mailgate.outbound.compose import normalize_language

# Reply/forward prefixes of common clients in the languages a dealer meets, with
# Outlook's counters (``AW[2]:``), and gateway or mailgate tags; any number of them.
_PREFIX = re.compile(
    r"^\s*(?:"
    r"(?:re|aw|antw|antwort|wg|fw|fwd|wtr|weiterleitung|sv|vs|tr|ref|rif|r|odp|vb)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:：]"
    r"|\[\s*lead\s+\d+\s*\]"
    r"|\[\s*(?:extern|external|ext)\s*\]|\*\s*(?:extern|external)\s*\*"
    r")\s*",
    re.IGNORECASE,
)
_TAG_ANYWHERE = re.compile(r"\s*\[\s*lead\s+\d+\s*\]\s*", re.IGNORECASE)
_REPLY_PREFIX = {"de": "AW", "en": "Re"}
_FALLBACK = {
    "de": ("Ihre Anfrage bei {dealer}", "Ihre Anfrage"),
    "en": ("Your inquiry at {dealer}", "Your inquiry"),
}


def bare_subject(subject: str | None) -> str:
    """``Re: AW: WG: [Lead 9] Golf`` -> ``Golf``: every prefix and lead tag removed."""
    text = " ".join((subject or "").split())
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text, count=1)
    return " ".join(_TAG_ANYWHERE.sub(" ", text).split())


def conversation_subject(lead: Mapping[str, Any], dealer_name: str, language: str | None) -> str:
    """The subject of the conversation, without any reply prefix.

    ``lead`` needs ``subject`` and ``vehicle``: the original inquiry's subject,
    or the acknowledgement's wording for a lead without one (entered by hand).
    """
    language = normalize_language(language)
    own = bare_subject(lead.get("subject"))
    if own:
        return own
    named, plain = _FALLBACK[language]
    text = named.format(dealer=dealer_name) if dealer_name else plain
    vehicle = lead.get("vehicle") or {}
    model = " ".join(str(vehicle.get(k) or "") for k in ("make", "model")).strip()
    if vehicle.get("model") and model:
        text += f": {model}"
    return text


def customer_subject(lead: Mapping[str, Any], dealer_name: str, language: str | None) -> str:
    """``AW: <conversation subject>`` (``Re:`` in English): the reply prefix exactly once."""
    prefix = _REPLY_PREFIX[normalize_language(language)]
    return f"{prefix}: {conversation_subject(lead, dealer_name, language)}"
