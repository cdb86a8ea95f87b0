"""Free-text scanners: values a customer writes in prose instead of a labelled field.

Where it sits: the last layer under the source parser and the general reader
(:mod:`.layers`), used only to fill gaps.  "Sie erreichen mich tagsüber unter
08031 …", "den Golf für 24.990 € (Nr. 4711)", "EZ 03/2019, 85.000 km".

Each scanner is strict about what it rejects, because a wrong value is worse
than none: a phone number must be a valid number of the dealer's numbering
plan written as a phone number (leading ``0`` or ``+``), never a listing id,
postcode, date, price or VIN digits; a price is never a down payment, a rate
or a trade-in value; a licence plate is captured as a plate and never becomes
a stock number.  Every scanner works on a capped prefix of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from .fields import EMAIL_PATTERN
from .normalize import parse_price

SCAN_CHARS = 20_000
# plates and VINs stand in the fields near the top, not deep in a long message
FIELD_SCAN_CHARS = 6_000
PHONE_SCAN_CHARS = 6_000


@dataclass(frozen=True)
class Hit:
    """A scanned value with the words around it (shown by ``--explain``)."""

    value: str
    context: str


def _context(text: str, start: int, end: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end == -1 else line_end
    snippet = " ".join(text[max(line_start, start - 60) : min(line_end, end + 20)].split())
    return snippet[:120]


# --- phone numbers ------------------------------------------------------------------

# words right before a number that make it something else than a phone number
_NOT_PHONE_BEFORE = re.compile(
    r"(?i)(?:inserat|anzeige|angebot|listing|ad|annonce|advertentie|id|nr|nummer|no|number"
    r"|referenz|ref|plz|postleitzahl|zip|fin|vin|kennzeichen|preis|price|€|eur|euro|km"
    r"|bestand|kommission|lead|vorgang|kunden|auftrag|rechnung|iban|bic)\.?\s*[:#]?\s*$"
)
_PHONE_BEFORE = re.compile(
    r"(?i)(?:(?<![\w-])(?:tel|telefon|phone|mobil|handy|ruf|rückruf|erreich|gsm|call|bel"
    r"|téléphone|tél|telefono|cell|whatsapp|unter|at|op|au)\w*"
    r"|(?:der|die|meine|my|mijn|mon|ma|il\s+mio)\s+(?:nummer|number|numéro|numero))"
    r"\.?\s*[:#]?\s*$"
)


def phones(text: str, region: str = "DE") -> list[Hit]:
    """Phone numbers in prose, via phonenumbers' matcher in the dealer's region.

    A match must be written as a phone number (``0…``, ``+…``, ``(0…``) and be
    a *valid* number; numbers right after an id, postcode, price or VIN label
    are ids, not phones, unless a phone word stands there too.
    """
    # the matcher is slow per character: a long text is read at its head and its end
    # (the customer's signature), not in the middle
    head = text if len(text) <= PHONE_SCAN_CHARS else f"{text[:4000]}\n{text[-2000:]}"
    hits: list[Hit] = []
    try:
        matcher = phonenumbers.PhoneNumberMatcher(
            head, region.upper() or "DE", leniency=phonenumbers.Leniency.VALID, max_tries=200
        )
        for match in matcher:
            raw = match.raw_string.strip()
            if not raw.lstrip("(").startswith(("0", "+")):
                continue
            before = head[max(0, match.start - 30) : match.start]
            if _NOT_PHONE_BEFORE.search(before) and not _PHONE_BEFORE.search(before):
                continue
            after = head[match.end : match.end + 6].lower()
            if after.lstrip().startswith(("€", "eur", "km", "ps", "kw")):
                continue
            hits.append(Hit(raw, _context(head, match.start, match.end)))
    except Exception:  # noqa: BLE001 - a library quirk on odd input must not stop parsing
        return hits
    return hits


# --- e-mail addresses ------------------------------------------------------------------


def emails(text: str) -> list[Hit]:
    """Addresses anywhere in the text (the caller drops the dealer's and the platform's)."""
    head = text[:SCAN_CHARS]
    return [
        Hit(m.group(0), _context(head, m.start(), m.end())) for m in EMAIL_PATTERN.finditer(head)
    ]


# --- prices ---------------------------------------------------------------------------

# never the tail of a longer number: "39,900 EUR" (English thousands) is not "900 EUR"
_AMOUNT = (
    r"(?<![\d.,])(?:\d{1,3}(?:[.'\u00a0\u202f ]\d{3})+(?:,\d{2}|,-{1,2})?"
    r"|\d{1,3}(?:,\d{3})+(?:\.\d{2})?(?![\d,])"
    r"|\d{3,7}(?:[.,]\d{2}|,-{1,2})?)"
)
_PRICE = re.compile(
    r"(?:(?:€|EUR|Euro)\s?(" + _AMOUNT + r"))|(?:(" + _AMOUNT + r")\s?(?:€|EUR\b|Euro\b))",
    re.IGNORECASE,
)
# A price near these words is a financing amount or the customer's own car's value.
_NOT_PRICE = re.compile(
    r"(?i)anzahlung|sonderzahlung|rate\b|raten|monatlich|mtl|/\s?monat|pro\s+monat|im\s+monat"
    r"|leasing|finanzier|restwert|schlussrate|inzahlung|in\s+zahlung|ankauf|mein(?:en|em)?\s+"
    r"(?:auto|wagen|fahrzeug)|trade|deposit|down\s?payment|per\s+month|monthly|/\s?mo\b"
    r"|p\.\s?m\.|aanbetaling|maand|inruil|apport|mensualit|reprise|budget|maximal|höchstens"
    r"|bis\s+zu|ersparnis|rabatt|nachlass|discount|gebühr|versicherung|steuer"
)


_SENTENCE = re.compile(r"[!?;\n]|\.\s")


def prices(text: str) -> list[Hit]:
    """Vehicle prices written with a currency, minus financing and trade-in amounts."""
    head = text[:SCAN_CHARS]
    hits: list[Hit] = []
    for match in _PRICE.finditer(head):
        amount = match.group(1) or match.group(2)
        value = parse_price(amount)
        if value is None or value < 500:
            continue
        line_start = head.rfind("\n", 0, match.start()) + 1
        before = _SENTENCE.split(head[max(line_start, match.start() - 45) : match.start()])[-1]
        after = _SENTENCE.split(head[match.end() : match.end() + 25])[0]
        if _NOT_PRICE.search(before) or _NOT_PRICE.search(after):
            continue
        hits.append(Hit(amount, _context(head, match.start(), match.end())))
    return hits


# --- mileage, first registration ------------------------------------------------------

_MILEAGE = re.compile(r"(?<![\d.])(\d{1,3}(?:[.' ]\d{3})+|\d{1,6})\s?(?:km|Kilometer)\b", re.I)
_REGISTRATION = re.compile(
    r"(?i)\b(?:EZ|Erstzulassung|Bj\.?|Baujahr|first\s+registration|bouwjaar)\s*[:.]?\s*"
    r"((?:(?:0?[1-9]|1[0-2])[/.-])?(?:19|20)\d{2})\b"
)


def mileages(text: str) -> list[Hit]:
    head = text[:SCAN_CHARS]
    return [Hit(m.group(1), _context(head, m.start(), m.end())) for m in _MILEAGE.finditer(head)]


def registrations(text: str) -> list[Hit]:
    head = text[:SCAN_CHARS]
    return [
        Hit(m.group(1), _context(head, m.start(), m.end())) for m in _REGISTRATION.finditer(head)
    ]


# --- licence plates, stock numbers in prose -------------------------------------------

# German plates: district (1-3 letters), 1-2 letters, 1-4 digits, optional E/H suffix
PLATE = re.compile(r"(?<![\w-])([A-ZÄÖÜ]{1,3})[- ]([A-Z]{1,2})[- ]?(\d{1,4}[EH]?)(?![\w-])")


def plates(text: str) -> list[Hit]:
    head = text[:FIELD_SCAN_CHARS]
    return [
        Hit(" ".join(m.groups()[:2]) + " " + m.group(3), _context(head, m.start(), m.end()))
        for m in PLATE.finditer(head)
    ]


def is_plate(value: str) -> bool:
    """True if ``value`` is a German licence plate (never a stock number)."""
    return bool(PLATE.fullmatch(value.strip().upper()))


_STOCK_IN_PROSE = re.compile(
    r"(?i)[(\[]\s*(?:nr|no|nummer|ref|referenz|kom(?:m)?(?:issions)?-?(?:nr|nummer)"
    r"|bestands-?(?:nr|nummer)|fzg-?nr|fahrzeug-?(?:nr|nummer)|stock(?:\s*(?:no|number))?"
    r"|art(?:ikel)?-?nr|réf|rif)\.?\s*[:#]?\s*"
    r"([A-Za-z0-9][A-Za-z0-9/-]{1,19})\s*[)\]]"
)


def stock_numbers(text: str) -> list[Hit]:
    """``(Nr. 4711)``, ``[Ref: AB-12]``: a dealer's number in parentheses after the car."""
    head = text[:SCAN_CHARS]
    hits = []
    for match in _STOCK_IN_PROSE.finditer(head):
        value = match.group(1)
        if any(ch.isdigit() for ch in value) and not is_plate(value):
            hits.append(Hit(value, _context(head, match.start(), match.end())))
    return hits


_LISTING_IN_PROSE = re.compile(
    r"(?i)[(\[]\s*(?:anzeigen?-?(?:nr|nummer|id)|inserats?-?(?:nr|nummer|id)"
    r"|angebots?-?(?:nr|nummer|id)|ad[\s-]?(?:id|no|number)|listing[\s-]?(?:id|no|number)"
    r"|advertentie-?(?:nr|nummer|id)|annonce\s*n°?|n°\s*d.annonce|annuncio(?:\s*n\.?)?)"
    r"\.?\s*[:#]?\s*([A-Za-z0-9][A-Za-z0-9-]{3,39})\s*[)\]]"
)


def listing_ids(text: str) -> list[Hit]:
    """``(Anzeigennr. 24681357)``, ``(Inseratsnummer 387766554)``: the ad id in a sentence."""
    head = text[:FIELD_SCAN_CHARS]
    return [
        Hit(m.group(1), _context(head, m.start(), m.end()))
        for m in _LISTING_IN_PROSE.finditer(head)
        if any(ch.isdigit() for ch in m.group(1))
    ]


# --- VINs ------------------------------------------------------------------------------

_VIN = re.compile(r"(?<![A-Za-z0-9])([A-HJ-NPR-Z0-9]{17})(?![A-Za-z0-9])")
_TRANSLIT = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_check_digit_ok(vin: str) -> bool:
    """ISO 3779 / 49 CFR 565 check digit (position 9), mandatory for North American makes."""
    total = sum(_TRANSLIT[ch] * w for ch, w in zip(vin, _WEIGHTS, strict=True))
    expected = total % 11
    return vin[8] == ("X" if expected == 10 else str(expected))


def is_vin(value: str) -> bool:
    """17 characters of the VIN alphabet (no I, O, Q) with letters and digits.

    A VIN whose world manufacturer code is North American (first character
    1-5) must carry a valid check digit; European makes have none by law.
    """
    if not _VIN.fullmatch(value):
        return False
    if not any(ch.isdigit() for ch in value) or not any(ch.isalpha() for ch in value):
        return False
    return vin_check_digit_ok(value) if value[0] in "12345" else True


def vins(text: str) -> list[Hit]:
    head = text[:FIELD_SCAN_CHARS]
    return [
        Hit(m.group(1), _context(head, m.start(), m.end()))
        for m in _VIN.finditer(head.upper())
        if is_vin(m.group(1))
    ]


# --- the customer's name in a platform's headline --------------------------------------

_HEADLINE_NAME = re.compile(
    r"(?im)^[^\S\n]*(?:[^\n]{0,40}?\b)?(?:nachricht|anfrage|message|inquiry|enquiry|request"
    r"|bericht|aanvraag|vraag|demande|richiesta|messaggio)[^\S\n]+(?:von|from|van|de|di|da)"
    r"[^\S\n]+((?-i:(?:[A-ZÄÖÜ][\w'’.-]{0,30}[^\S\n]+){0,3}[A-ZÄÖÜ][\w'’-]{1,30}))"
    r"(?=[^\S\n]+(?:zu|für|zum|zur|about|regarding|for|on|voor|over|pour|concernant|per|su"
    r"|sull)\b|[^\S\n]*[:,.!]?[^\S\n]*$)"
)


def headline_names(text: str) -> list[Hit]:
    """ "Neue Nachricht von Timo Reichert zu deinem Inserat": the sender's name in a headline."""
    head = text[:FIELD_SCAN_CHARS]
    return [
        Hit(m.group(1), _context(head, m.start(1), m.end(1))) for m in _HEADLINE_NAME.finditer(head)
    ]
