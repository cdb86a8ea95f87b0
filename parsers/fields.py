"""Pure helpers shared by parsers: labelled fields, kinds, the customer's e-mail address.

Name, price, make and phone normalisers are in :mod:`.normalize`.
"""

from __future__ import annotations

import re

from .message import MailView, clean_line

# Label (lower-case, without the colon) -> field key.  German, English, Dutch, French.
LABELS: dict[str, str] = {
    "name": "name",
    "ihr name": "name",
    "your name": "name",
    "naam": "name",
    "nom": "name",
    "vollständiger name": "name",
    "full name": "name",
    "kontaktperson": "name",
    "vorname": "first_name",
    "first name": "first_name",
    "voornaam": "first_name",
    "prénom": "first_name",
    "prenom": "first_name",
    "nachname": "last_name",
    "last name": "last_name",
    "achternaam": "last_name",
    "surname": "last_name",
    "familienname": "last_name",
    "anrede": "salutation",
    "salutation": "salutation",
    "aanhef": "salutation",
    "civilité": "salutation",
    "e-mail": "email",
    "email": "email",
    "e-mail-adresse": "email",
    "emailadresse": "email",
    "e-mail address": "email",
    "email address": "email",
    "mail": "email",
    "courriel": "email",
    "ihre e-mail": "email",
    "your email": "email",
    "e-mailadres": "email",
    "telefon": "phone",
    "tel": "phone",
    "tel.": "phone",
    "telefonnummer": "phone",
    "phone": "phone",
    "telephone": "phone",
    "mobil": "phone",
    "handy": "phone",
    "mobile": "phone",
    "telefoon": "phone",
    "téléphone": "phone",
    "rufnummer": "phone",
    "straße": "street",
    "strasse": "street",
    "street": "street",
    "adresse": "street",
    "address": "street",
    "straat": "street",
    "rue": "street",
    "plz": "postcode",
    "postleitzahl": "postcode",
    "zip": "postcode",
    "postcode": "postcode",
    "postal code": "postcode",
    "code postal": "postcode",
    "plz/ort": "postcode_city",
    "plz / ort": "postcode_city",
    "ort": "city",
    "stadt": "city",
    "city": "city",
    "wohnort": "city",
    "plaats": "city",
    "ville": "city",
    "land": "country",
    "country": "country",
    "pays": "country",
    "nachricht": "message",
    "message": "message",
    "ihre nachricht": "message",
    "your message": "message",
    "kommentar": "message",
    "anmerkung": "message",
    "bemerkung": "message",
    "bericht": "message",
    "opmerking": "message",
    "marke": "make",
    "hersteller": "make",
    "make": "make",
    "merk": "make",
    "marque": "make",
    "modell": "model",
    "model": "model",
    "modèle": "model",
    "fahrzeug": "model",
    "vehicle": "model",
    "fin": "vin",
    "vin": "vin",
    "fahrgestellnummer": "vin",
    "chassisnummer": "vin",
    "preis": "price",
    "price": "price",
    "prijs": "price",
    "prix": "price",
    "kaufpreis": "price",
    "verkaufspreis": "price",
    "inserat-nr": "listing_id",
    "inseratsnummer": "listing_id",
    "anzeigen-id": "listing_id",
    "listing id": "listing_id",
    "ad id": "listing_id",
    "interne nummer": "stock_number",
    "bestandsnummer": "stock_number",
    "stock number": "stock_number",
    "fahrzeugnummer": "stock_number",
}
_LABEL_LINE = re.compile(r"^\s*[*•-]?\s*([^\n:]{1,40}?)\s*:\s*(.*)$")
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_NOREPLY = re.compile(
    r"^(no-?reply|do-?not-?reply|noreply|mailer|bounce|system|info|service)\b", re.IGNORECASE
)
KINDS_BY_KEYWORD: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("test_drive", ("probefahrt", "test drive", "testdrive", "proefrit", "essai")),
    ("trade_in", ("inzahlungnahme", "inzahlung", "trade-in", "trade in", "ankauf", "inruil")),
    ("financing", ("finanzierung", "leasing", "financing", "financiering", "finance")),
    ("service", ("werkstatt", "servicetermin", "inspektion", "wartung", "service appointment")),
)


def labelled_fields(text: str) -> dict[str, str]:
    """First value per known label from ``label: value`` lines (value may follow on next line)."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _LABEL_LINE.match(line)
        if not match:
            continue
        key = LABELS.get(match.group(1).strip().lower())
        if key is None or key in found:
            continue
        value = match.group(2).strip()
        if key == "message":
            rest = [value] + lines[index + 1 :]
            value = "\n".join(rest).strip()
        elif not value and index + 1 < len(lines):
            value = lines[index + 1].strip()
        cleaned = value if key == "message" else clean_line(value, 255)
        if cleaned:
            found[key] = cleaned
    return found


def detect_kind(text: str) -> str:
    lowered = text.lower()
    for kind, words in KINDS_BY_KEYWORD:
        if any(word in lowered for word in words):
            return kind
    return "inquiry"


def is_system_address(address: str) -> bool:
    return bool(_NOREPLY.match(address.split("@", 1)[0]))


def choose_customer_email(
    labelled: str | None, view: MailView, dealer_addresses: frozenset[str]
) -> str | None:
    """Labelled body field -> non-system Reply-To -> non-system From -> None."""

    def acceptable(address: str | None) -> str | None:
        if not address:
            return None
        match = _EMAIL.search(address)
        if not match:
            return None
        found = match.group(0)
        local, _, domain = found.rpartition("@")
        found = f"{local}@{domain.lower()}"
        if found.lower() in dealer_addresses or is_system_address(found):
            return None
        return found

    for candidate in (
        [labelled] + [a for _, a in view.reply_to] + [a for _, a in view.from_addresses]
    ):
        chosen = acceptable(candidate)
        if chosen:
            return chosen
    return None
