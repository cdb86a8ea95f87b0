"""Pure normalisers for values every parser extracts: names, prices, makes, phones, VINs.

They live in one place so that every source yields the same shapes: a make is
always ``Volkswagen`` (never ``VW``), a price always a number, a phone number
always available as written *and* as E.164 for matching.
"""

from __future__ import annotations

import re

import phonenumbers

from .message import clean_line

_SALUTATIONS = {
    "herr": "Herr",
    "herrn": "Herr",
    "frau": "Frau",
    "mr": "Mr",
    "mr.": "Mr",
    "mrs": "Mrs",
    "mrs.": "Mrs",
    "ms": "Ms",
    "ms.": "Ms",
    "miss": "Miss",
    "divers": "Divers",
    "dhr.": "Dhr.",
    "dhr": "Dhr.",
    "mevr.": "Mevr.",
    "mevr": "Mevr.",
    "m.": "M.",
    "mme": "Mme",
    "mme.": "Mme",
    "madame": "Madame",
    "monsieur": "Monsieur",
    "firma": "Firma",
}
_TITLE_WORDS = {
    "prof.",
    "prof",
    "dr.",
    "dr",
    "dr.-ing.",
    "dr.med.",
    "med.",
    "dipl.-ing.",
    "dipl.-kfm.",
    "mag.",
    "ing.",
    "ir.",
    "drs.",
    "mr.",  # Dutch "meester" only after a salutation has been taken
}
_PARTICLES = {
    "von",
    "van",
    "de",
    "der",
    "den",
    "zu",
    "vom",
    "zur",
    "du",
    "le",
    "la",
    "di",
    "da",
    "del",
    "della",
    "ten",
    "ter",
    "op",
    "'t",
    "d'",
    "dos",
    "das",
}


def split_name(full: str | None) -> tuple[str | None, str | None, str | None, str | None]:
    """Salutation, academic title, first and last name from one written name.

    Particles and double-barrelled names stay with the last name, because that
    is how the customer is addressed and looked up::

        >>> split_name("Herr Dr. Hans von Müller")
        ('Herr', 'Dr.', 'Hans', 'von Müller')
        >>> split_name("Anna-Lena Schulze-Brandt")
        (None, None, 'Anna-Lena', 'Schulze-Brandt')
        >>> split_name("Müller, Hans")
        (None, None, 'Hans', 'Müller')
    """
    text = clean_line(full) or ""
    if text.count(",") == 1 and not any(w in text.lower() for w in (" und ", " and ")):
        last, first = (part.strip() for part in text.split(","))
        if last and first and " " not in last.strip():
            text = f"{first} {last}"
    words = text.split()
    salutation = title = None
    if words and words[0].lower() in _SALUTATIONS:
        salutation = _SALUTATIONS[words.pop(0).lower()]
    titles = []
    while len(words) > 1 and words[0].lower() in _TITLE_WORDS:
        titles.append(words.pop(0))
    title = " ".join(titles) or None
    if not words:
        return salutation, title, None, None
    if len(words) == 1:
        return salutation, title, None, words[0]
    split_at = len(words) - 1
    while split_at > 1 and words[split_at - 1].lower() in _PARTICLES:
        split_at -= 1
    return salutation, title, " ".join(words[:split_at]), " ".join(words[split_at:])


_PRICE_NUMBER = re.compile(r"\d[\d.,' \u00a0\u202f]*")


def parse_price(value: str | None) -> float | None:
    """A price as a number: ``24.890 €``, ``€ 38.450,-``, ``71.830,00 EUR``, ``$12,500.00``.

    ``.`` and ``,`` are thousands separators unless exactly two digits follow
    the last one, which makes it the decimal mark (prices never carry three
    decimals).
    """
    if not value:
        return None
    match = _PRICE_NUMBER.search(value)
    if not match:
        return None
    digits = re.sub(r"['\s\u00a0\u202f]", "", match.group(0)).rstrip(".,")
    decimal = re.search(r"[.,](\d{1,2})$", digits)
    if decimal:
        whole = re.sub(r"[.,]", "", digits[: decimal.start()])
        digits = f"{whole}.{decimal.group(1)}"
    else:
        digits = re.sub(r"[.,]", "", digits)
    try:
        price = float(digits)
    except ValueError:
        return None
    return price if 0 < price < 100_000_000 else None


# Spellings seen in lead mails -> the make's canonical name.
_MAKES: dict[str, str] = {
    "vw": "Volkswagen",
    "volkswagen": "Volkswagen",
    "vw nutzfahrzeuge": "Volkswagen Nutzfahrzeuge",
    "volkswagen nutzfahrzeuge": "Volkswagen Nutzfahrzeuge",
    "mercedes": "Mercedes-Benz",
    "mercedes benz": "Mercedes-Benz",
    "mercedes-benz": "Mercedes-Benz",
    "mb": "Mercedes-Benz",
    "daimler": "Mercedes-Benz",
    "bmw": "BMW",
    "mini": "MINI",
    "audi": "Audi",
    "opel": "Opel",
    "vauxhall": "Vauxhall",
    "ford": "Ford",
    "skoda": "Škoda",
    "škoda": "Škoda",
    "seat": "SEAT",
    "cupra": "Cupra",
    "citroen": "Citroën",
    "citroën": "Citroën",
    "peugeot": "Peugeot",
    "renault": "Renault",
    "dacia": "Dacia",
    "fiat": "Fiat",
    "alfa": "Alfa Romeo",
    "alfa romeo": "Alfa Romeo",
    "nissan": "Nissan",
    "toyota": "Toyota",
    "lexus": "Lexus",
    "mazda": "Mazda",
    "honda": "Honda",
    "hyundai": "Hyundai",
    "kia": "Kia",
    "volvo": "Volvo",
    "porsche": "Porsche",
    "tesla": "Tesla",
    "mitsubishi": "Mitsubishi",
    "suzuki": "Suzuki",
    "subaru": "Subaru",
    "jeep": "Jeep",
    "land rover": "Land Rover",
    "landrover": "Land Rover",
    "jaguar": "Jaguar",
    "smart": "smart",
    "ds": "DS",
    "mg": "MG",
    "byd": "BYD",
    "polestar": "Polestar",
}


def normalise_make(value: str | None) -> str | None:
    """``VW`` -> ``Volkswagen``, ``mercedes`` -> ``Mercedes-Benz``; unknown makes keep case."""
    text = clean_line(value, 64)
    if not text:
        return None
    key = re.sub(r"\s+", " ", text.lower().replace("_", " ")).strip(" .")
    if key in _MAKES:
        return _MAKES[key]
    return text if not text.islower() else text.title()


def known_make(word: str) -> str | None:
    """The canonical make if ``word`` names one, else None (for ``Make Model`` strings)."""
    return _MAKES.get(word.strip().lower())


def phone_e164(value: str | None, region: str = "DE") -> str | None:
    """``0171 2345678`` -> ``+491712345678`` (region = the dealer's country); None if invalid."""
    text = clean_line(value, 64)
    if not text or sum(ch.isdigit() for ch in text) < 5:
        return None
    text = re.sub(r"^00", "+", text.strip())
    text = re.sub(r"\(0\)", "", text)
    try:
        number = phonenumbers.parse(text, region.upper() or "DE")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_VIN = re.compile(r"\b[A-HJ-NPR-Z0-9]{17}\b")


def clean_vin(value: str | None) -> str | None:
    """A 17-character VIN (no I, O, Q) in upper case, or None."""
    if not value:
        return None
    match = _VIN.search(value.upper().replace(" ", ""))
    return match.group(0) if match else None
