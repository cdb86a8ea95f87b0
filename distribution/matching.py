"""Customer matching keys, pure: is this inquiry from someone we already know?

Exact keys decide (normalised e-mail, E.164 phone, folded name + postcode or
street); the fuzzy score (rapidfuzz) only *suggests* a possible duplicate in
the protocol, because merging two different people would hand one customer's
history to another.

Relay addresses (portals that hide the customer's address behind a
per-conversation alias) identify a conversation, not a person: they count only
to attach a mail to the open lead of that same conversation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import phonenumbers
from rapidfuzz import fuzz

# Portal relay domains (a domain or any subdomain of it).  Dealers can add more
# in [distribution] relay_domains.
RELAY_DOMAINS = (
    "mobile.de",
    "autoscout24.com",
    "autoscout24.de",
    "kleinanzeigen.de",
    "ebay-kleinanzeigen.de",
    "marketplace.facebook.com",
)
SUGGEST_SCORE = 88.0
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "ø": "oe"})
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_HONORIFICS = {"herr", "frau", "hr", "fr", "dr", "prof", "mr", "mrs", "ms", "divers"}
_STREET = re.compile(r"(strasse|str)\b")


def normalise_email(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    text = text.lower()
    return text if "@" in text else None


def is_relay(email: str, extra_domains: Iterable[str] = ()) -> bool:
    domain = email.rpartition("@")[2].lower()
    return any(
        domain == d or domain.endswith("." + d)
        for d in (*RELAY_DOMAINS, *(x.lower() for x in extra_domains))
    )


def normalise_phone(value: str | None, region: str = "DE") -> str | None:
    """E.164 (``+491701234567``), or None when it is not a valid number."""
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, region.upper() or None)
    except phonenumbers.NumberParseException:
        return None
    # "valid", not merely "possible": a possible short number ("12") would match strangers
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def fold(value: str | None) -> str:
    """Lower case, umlauts spelled out (Müller = Mueller), accents dropped, words only."""
    text = (value or "").lower().translate(_FOLD)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def name_key(
    name: str | None, first_name: str | None = None, last_name: str | None = None
) -> str | None:
    """Folded name words, sorted (so "Müller, Hans" = "Hans Mueller"), no honorifics."""
    source = f"{first_name} {last_name}" if first_name and last_name else (name or last_name)
    words = sorted(w for w in fold(source).split() if w not in _HONORIFICS)
    return " ".join(words) or None


def street_key(street: str | None) -> str | None:
    text = _STREET.sub("str", fold(street)).replace(" ", "")
    return text or None


def postcode_key(postcode: str | None) -> str | None:
    text = "".join((postcode or "").split()).upper()
    return text or None


def suggestions(
    key: str, candidates: Sequence[tuple[int, str]], threshold: float = SUGGEST_SCORE
) -> list[tuple[int, float]]:
    """Ids of customers whose name is *similar* (not equal): for a human to check."""
    scored = [(cid, fuzz.token_sort_ratio(key, other)) for cid, other in candidates if other != key]
    return sorted(((c, s) for c, s in scored if s >= threshold), key=lambda x: -x[1])[:3]
