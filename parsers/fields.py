"""Pure helpers shared by parsers: labelled fields, names, prices, kinds, e-mail choice."""

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
_SALUTATIONS = {
    "herr": "Herr",
    "frau": "Frau",
    "mr": "Mr",
    "mr.": "Mr",
    "mrs": "Mrs",
    "mrs.": "Mrs",
    "ms": "Ms",
    "ms.": "Ms",
    "divers": "Divers",
    "dhr.": "Dhr.",
    "mevr.": "Mevr.",
    "m.": "M.",
    "mme": "Mme",
}
_TITLES = ("prof. dr.", "dr. med.", "dr.-ing.", "prof.", "dr.", "dipl.-ing.", "mag.", "ing.")
_PARTICLES = {"von", "van", "de", "der", "den", "zu", "vom", "zur", "du", "le", "la", "di", "da"}
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


def split_name(full: str) -> tuple[str | None, str | None, str | None, str | None]:
    """``"Herr Dr. Hans von Müller"`` -> ``("Herr", "Dr.", "Hans", "von Müller")``."""
    words = (clean_line(full) or "").split()
    salutation = title = None
    if words and words[0].lower() in _SALUTATIONS:
        salutation = _SALUTATIONS[words.pop(0).lower()]
    titles = []
    while words and any(words[0].lower() == t for t in (t.split()[0] for t in _TITLES)):
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


def parse_price(value: str | None) -> float | None:
    """``24.890 €``, ``€ 38.450,-``, ``71.830,00 EUR``, ``$12,500.00`` -> a number."""
    if not value:
        return None
    match = re.search(r"\d[\d.,' ]*", value)
    if not match:
        return None
    digits = match.group(0).strip().replace("'", "").replace(" ", "").rstrip(".,")
    if re.search(r",\d{2}$", digits):
        digits = digits.replace(".", "").replace(",", ".")
    elif re.search(r"\.\d{2}$", digits) and "," in digits:
        digits = digits.replace(",", "")
    elif re.search(r"\.\d{2}$", digits):
        pass
    else:
        digits = digits.replace(".", "").replace(",", "")
    try:
        return float(digits)
    except ValueError:
        return None


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
