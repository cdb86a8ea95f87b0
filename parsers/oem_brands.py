"""Lead systems of the brands without a module of their own (Toyota, Kia, Škoda, BMW, Ford ...).

Where it sits: after the brand modules (Opel, Nissan, VW/Audi, Mercedes-Benz,
Hyundai), before the website parser.  The evidence is the one every OEM module
asks for (:mod:`.oem_common`): the brand where a *system* puts it (From
display name or a sender-domain label; the subject counts for less) plus lead
-system structure -- a lead or process number and a response deadline or a
lead-system marker.  The number and deadline are also read in French, Dutch,
Italian and English, since importers' systems are translated.  A brand named
only in the vehicle text means nothing: dealers sell many brands.

Extraction is the shared sectioned-fields reader; the general reader under
every parser (:mod:`.layers`) fills what the German section labels miss.
"""

from __future__ import annotations

import re

from .adf_xml import contains_adf
from .context import DEFAULT_CONTEXT, ParseContext
from .htmltext import html_text
from .lexicon import field_of
from .message import MailView
from .model import ParsedLead
from .oem_common import (
    DEADLINE,
    LEAD_NUMBER,
    MARKETPLACE_DOMAINS,
    brand_in_sender,
    brand_in_sender_or_subject,
    build_lead,
)
from .signals import sent_by

NAME = "oem_brands"

# brand word (as a system writes it) -> (source slug, canonical make)
BRANDS: dict[str, tuple[str, str]] = {
    "toyota": ("toyota", "Toyota"),
    "lexus": ("lexus", "Lexus"),
    "kia": ("kia", "Kia"),
    "škoda": ("skoda", "Škoda"),
    "skoda": ("skoda", "Škoda"),
    "bmw": ("bmw", "BMW"),
    "mini": ("mini", "MINI"),
    "ford": ("ford", "Ford"),
    "renault": ("renault", "Renault"),
    "dacia": ("dacia", "Dacia"),
    "peugeot": ("peugeot", "Peugeot"),
    "citroën": ("citroen", "Citroën"),
    "citroen": ("citroen", "Citroën"),
    "fiat": ("fiat", "Fiat"),
    "jeep": ("jeep", "Jeep"),
    "seat": ("seat", "SEAT"),
    "cupra": ("cupra", "Cupra"),
    "mazda": ("mazda", "Mazda"),
    "volvo": ("volvo", "Volvo"),
    "honda": ("honda", "Honda"),
    "suzuki": ("suzuki", "Suzuki"),
    "mitsubishi": ("mitsubishi", "Mitsubishi"),
    "subaru": ("subaru", "Subaru"),
    "polestar": ("polestar", "Polestar"),
}
_WORDS = tuple(BRANDS)

# Lead numbers and deadlines in the importers' other languages.
_LEAD_NUMBER_INTL = re.compile(
    r"\b(?:num[ée]ro (?:de )?(?:lead|demande|dossier)|leadnummer|lead[- ]?nr|numero (?:di )?lead"
    r"|lead reference|lead ref\.?|enquiry (?:id|number|no\.?))\s*:",
    re.IGNORECASE,
)
_DEADLINE_INTL = re.compile(
    r"d[ée]lai de (?:r[ée]ponse|traitement)|within \d+\s*(?:hours|h\b|working days?)"
    r"|response deadline|binnen \d+\s*(?:uur|werkdag)|entro \d+\s*ore",
    re.IGNORECASE,
)
_SYSTEM_MARKER = re.compile(
    r"lead[- ]?(?:management|system|center|centre)|interessentenmanagement|partnerportal"
    r"|händler-?lead|premium selection|lead-?it|stellantis",
    re.IGNORECASE,
)
# A lead number written as a column ("Lead-ID            FDL-2026-330912") has no colon.
_LEAD_NUMBER_COLUMN = re.compile(
    r"(?im)^[ \t]*(?:lead[- ]?(?:id|nr\.?|nummer)|vorgangs-?nr\.?)[ \t]{2,}[A-Z0-9][\w-]{3,}"
)
_SCAN = 20_000


def matches(view: MailView) -> bool:
    """A brand in a system position and lead-system structure (see the module docstring)."""
    return _brand(view) is not None


# One pass over the sender and subject before the per-brand checks: most mails name no brand.
_ANY_BRAND = re.compile(
    r"(?<![\w-])(?:" + "|".join(re.escape(w) for w in BRANDS) + r")(?![\w-])", re.IGNORECASE
)


def _names_a_brand(view: MailView) -> bool:
    for display, address in view.from_addresses:
        if _ANY_BRAND.search(display or "") or _ANY_BRAND.search(address.rpartition("@")[2]):
            return True
    return bool(_ANY_BRAND.search(view.subject or ""))


def _brand(view: MailView) -> str | None:
    if not _names_a_brand(view) or sent_by(view, MARKETPLACE_DOMAINS):
        return None
    word = brand_in_sender(view, _WORDS)
    needed = 2
    if word is None:
        word = brand_in_sender_or_subject(view, _WORDS)
        needed = 3
    if word is None or sent_by(view, MARKETPLACE_DOMAINS):
        return None
    if contains_adf(view.text) or contains_adf(view.html):
        return None
    head = view.text[:_SCAN]
    if _structure(head) >= needed:
        return word
    if view.html and len(head.strip()) < 200 and _structure(html_text(view.html)[:_SCAN]) >= needed:
        return word
    return None


def _structure(text: str) -> int:
    """Lead-system signals in ``text``; zero unless a lead number or a deadline is there."""
    number = bool(
        LEAD_NUMBER.search(text)
        or _LEAD_NUMBER_INTL.search(text)
        or _LEAD_NUMBER_COLUMN.search(text)
        or _lexicon_lead_number(text)
    )
    deadline = bool(DEADLINE.search(text) or _DEADLINE_INTL.search(text))
    if not (number or deadline):
        return 0
    return number + deadline + bool(_SYSTEM_MARKER.search(text))


# "Label: value", "Label :value", "Label<tab>value", "Label   value", or the value on the next line
_LABELLED = re.compile(
    r"(?m)^[ \t]*([^\n:\t]{2,40}?)(?:[ \t]*:[ \t]*|\t+[ \t]*| {2,}|[ \t]*:?[ \t]*\n[ \t]*)"
    r"(?=[A-Z0-9][\w/-]{3,})"  # a lookahead: the value line may be the next label
)


def _lexicon_lead_number(text: str) -> bool:
    """A ``Label: value`` line whose label the lexicon knows as a lead number, in any wording."""
    return any(field_of(m[1]) == "lead_number" for m in _LABELLED.finditer(text[:4000]))


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    word = _brand(view) or brand_in_sender_or_subject(view, _WORDS) or "toyota"
    slug, make = BRANDS[word.lower()]
    return build_lead(
        view, ctx, name=NAME, source=f"oem:{slug}", default_make=make, default_kind="inquiry"
    )
