"""Pure helpers shared by parsers: labelled fields, kinds, the customer's e-mail address.

Name, price, make and phone normalisers are in :mod:`.normalize`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .lexicon import field_of, starts_like_label
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
    "ansprechpartner": "name",
    "uw naam": "name",
    "votre nom": "name",
    "nom complet": "name",
    "nom et prénom": "name",
    "vor- und nachname": "name",
    "name, vorname": "name",
    "absender": "name",
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
    "e-mail adres": "email",
    "emailadres": "email",
    "uw e-mailadres": "email",
    "adresse e-mail": "email",
    "adresse email": "email",
    "adresse électronique": "email",
    "votre e-mail": "email",
    "votre email": "email",
    "e-mail-adresse des kunden": "email",
    "kunden-e-mail": "email",
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
    "telefon / mobil": "phone",
    "telefon/mobil": "phone",
    "telefonnummer (optional)": "phone",
    "mobilnummer": "phone",
    "handynummer": "phone",
    "phone number": "phone",
    "telephone number": "phone",
    "mobile phone": "phone",
    "telefoonnummer": "phone",
    "mobiel": "phone",
    "gsm": "phone",
    "numéro de téléphone": "phone",
    "tél.": "phone",
    "tél": "phone",
    "portable": "phone",
    "ihre telefonnummer": "phone",
    "your phone": "phone",
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
    "opmerkingen": "message",
    "uw bericht": "message",
    "votre message": "message",
    "commentaire": "message",
    "mitteilung": "message",
    "ihre anfrage": "message",
    "anfrage": "message",
    "anliegen": "message",
    "nachrichtentext": "message",
    "message body": "message",
    "comments": "message",
    "comment": "message",
    "kommentare": "message",
    "fragen": "message",
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
    "fahrzeug-nr.": "stock_number",
    "fzg-nr.": "stock_number",
    "interne nr.": "stock_number",
    "voorraadnummer": "stock_number",
    "standort": "vehicle_location",
    "fahrzeugstandort": "vehicle_location",
    "vehicle location": "vehicle_location",
    "locatie": "vehicle_location",
    "emplacement": "vehicle_location",
    "wunschfahrzeug": "model",
    "fahrzeugmodell": "model",
    "modèle souhaité": "model",
    "gewenst model": "model",
    "hausnummer": "house_number",
    "anzahlung": "down_payment",
    "down payment": "down_payment",
    "aanbetaling": "down_payment",
    "apport": "down_payment",
    "monatliche rate": "monthly_rate",
    "rate": "monthly_rate",
    "monthly rate": "monthly_rate",
    "laufzeit": "term",
    "wunschtermin": "appointment",
    "termin": "appointment",
    "datenschutz": "consent",
    "datenschutzerklärung": "consent",
    "einwilligung": "consent",
    "dsgvo": "consent",
    "privacy": "consent",
    "privacy policy": "consent",
    "consent": "consent",
    "akzeptanz datenschutz": "consent",
    "privacyverklaring": "consent",
    "betreff": "subject",
    "subject": "subject",
    "onderwerp": "subject",
    "objet": "subject",
    "sujet": "subject",
    "straße und hausnummer": "street",
    "straße, hausnummer": "street",
    "str./nr.": "street",
    "postcode en plaats": "postcode_city",
    "code postal / ville": "postcode_city",
    "zip / city": "postcode_city",
}
_LABEL_LINE = re.compile(r"^\s*[*•-]?\s*([^\n:>]{1,40}?)\s*:\s*(.*)$")
_BARE_LABEL = re.compile(r"^\s*[*•-]?\s*([^\n:]{1,40}?)\s*:?\s*$")
# The lookbehind starts a match only where a run of local-part characters
# starts; without it a long run without "@" (200,000 dots) is rescanned from
# every position, quadratic time.
EMAIL_PATTERN = re.compile(
    r"(?<![A-Za-z0-9._%+'=-])[A-Za-z0-9._%+'=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_EMAIL = EMAIL_PATTERN
_NOREPLY = re.compile(
    r"^(no-?reply|do-?not-?reply|noreply|no_reply|donotreply|mailer|mailer-daemon|postmaster"
    r"|bounces?|system|info|service|wordpress|www-data|www|apache|nginx|httpd|php|webmaster"
    r"|web|website|webform|webformular|formular|kontaktformular|forms?|typo3|notifications?"
    r"|notification|alerts?|newsletter|automailer|robot|daemon)(?:\d+|[-_+][\w.+-]*)?$",
    re.IGNORECASE,
)
# Marketplace relays (FORMATS.md 1.1): replying reaches the customer, so a relay
# address in From is a usable contact when the mail carries no real address.
RELAY_DOMAINS: tuple[str, ...] = (
    "kontakt.mobile.de",
    "mail.mobile.de",
    "mail.ebay-kleinanzeigen.de",
    "mail.kleinanzeigen.de",
    "reply.marktplaats.nl",
    "mail.marktplaats.nl",
)
# Mailbox providers: a dealer whose lead address is at one of them does not own the domain.
FREEMAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "gmx.de",
        "gmx.net",
        "gmx.at",
        "web.de",
        "t-online.de",
        "outlook.com",
        "outlook.de",
        "hotmail.com",
        "hotmail.de",
        "live.com",
        "live.de",
        "yahoo.com",
        "yahoo.de",
        "icloud.com",
        "me.com",
        "aol.com",
        "freenet.de",
        "mail.de",
        "posteo.de",
        "online.de",
        "arcor.de",
        "proton.me",
        "protonmail.com",
    }
)
_SPACES = re.compile(r"\s+")
_MARKER_NOISE = re.compile(r"[*\s]+$|^\s*[*•-]\s*|\s*\((?:optional|pflichtfeld|required)\)", re.I)
KINDS_BY_KEYWORD: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "test_drive",
        (
            "probefahrt",
            "probe fahren",
            "probefahren",
            "test drive",
            "test-drive",
            "testdrive",
            "proefrit",
            "essai",
            "prova su strada",
            "giro di prova",
        ),
    ),
    (
        "trade_in",
        (
            "inzahlungnahme",
            "inzahlung",
            "in zahlung",
            "trade-in",
            "trade in",
            "part-exchange",
            "part exchange",
            "ankauf",
            "rückkauf",
            "eintausch",
            "inruil",
            "reprise",
            "permuta",
        ),
    ),
    (
        "financing",
        (
            "finanzierung",
            "leasing",
            "financing",
            "financiering",
            "finance",
            "finanziamento",
            "financement",
        ),
    ),
    ("service", ("werkstatt", "servicetermin", "inspektion", "wartung", "service appointment")),
)


# lexicon field -> the key labelled_fields uses (generic splits "VW Golf" into make and model)
_LEXICON_KEYS = {"vehicle": "model", "mileage": "mileage", "first_registration": "registration"}
_LEXICON_SKIP = frozenset({"lead_number", "plate", "contact_time", "contact_way"})


def label_key(label: str) -> str | None:
    """The field key of a written label (``Ihr Name*``, ``E-Mail :``, ``Tél.``), or None.

    The exact list above first (its keys are what the website and generic
    parsers expect), then the multilingual lexicon, which folds case,
    accents, punctuation and possessives ("Indirizzo email", "Uw vraag").
    """
    text = _MARKER_NOISE.sub("", label.replace("\u00a0", " ")).strip().lower()
    text = _SPACES.sub(" ", text)
    found = LABELS.get(text) or LABELS.get(text.rstrip("."))
    if found or len(text) > 60:
        return found
    if not starts_like_label(text):
        return None  # cheap: most lines of a long mail start with no label word at all
    key = field_of(text)
    if key is None or key in _LEXICON_SKIP:
        return None
    return _LEXICON_KEYS.get(key, key)


def labelled_fields(text: str) -> dict[str, str]:
    """First value per known label from ``label: value`` lines.

    Also understood: ``Name :`` (space before the colon, French style), a value
    on the next line when the label stands alone (HTML tables with label and
    value in separate rows or cells), ``*`` required-field markers.  A
    ``message`` value runs over several lines until the next known label or a
    signature separator, because customers write paragraphs.
    """
    found: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if len(line) > 2000:
            continue
        match = _LABEL_LINE.match(line) if ":" in line else None
        key = label_key(match.group(1)) if match else None
        value = match.group(2).strip() if match and key else ""
        if key is None:
            bare = _BARE_LABEL.match(line)
            key = label_key(bare.group(1)) if bare else None
            if key is None:
                continue
        if key in found:
            continue
        if not value:
            # label alone: the value is on the next non-blank line (table rows/cells)
            nxt = _next_filled(lines, index)
            if nxt is None or _looks_labelled(lines[nxt]) or not _plausible(key, lines[nxt]):
                continue
            value, index = lines[nxt].strip(), nxt + 1
        if key == "message":
            body = [value]
            while index < len(lines):
                nxt_line = lines[index]
                if _is_label_line(nxt_line) or nxt_line.rstrip() == "--":
                    break
                if nxt_line.startswith("-- "):
                    break
                body.append(nxt_line.rstrip())
                index += 1
            cleaned = "\n".join(body).strip()
        else:
            cleaned = clean_line(value, 255) or ""
        if cleaned:
            found[key] = cleaned
    _add_general_pairs(text, found)
    if "street" in found and "house_number" in found:
        found["street"] = f"{found['street']} {found.pop('house_number')}"
    return found


def _add_general_pairs(text: str, found: dict[str, str]) -> None:
    """Fill what the ``label: value`` pass missed from the general reader's layouts.

    Column-aligned forms ("Vorname          Rainer"), ``key => value`` dumps
    and labels above their values are common in form mailers; the general
    reader (:mod:`.reader`) reads them, and only gaps are filled.
    """
    from .reader import read_text

    if len(text) > 3_000 and all(k in found for k in ("email", "phone", "message")):
        return  # a long, fully labelled mail: the layers fill the rest (see layers._complete)
    for pair in read_text(text):
        if pair.section != "main" or pair.key in _LEXICON_SKIP:
            continue
        key = _LEXICON_KEYS.get(pair.key, pair.key)
        if key not in found:
            found[key] = pair.value


def _next_filled(lines: list[str], index: int) -> int | None:
    for candidate in range(index, min(index + 3, len(lines))):
        if lines[candidate].strip():
            return candidate
    return None


def _looks_labelled(line: str) -> bool:
    """Any ``label: value`` line, known label or not (an empty field is followed by one),
    or a field line in another layout the lexicon knows ("ANZAHLUNG<tab>5.000 €")."""
    if _is_label_line(line):
        return True
    match = _LABEL_LINE.match(line)
    if match and match.group(2).strip() and "//" not in match.group(1):
        return True
    from .reader import is_field_line

    return is_field_line(line)


def _is_label_line(line: str) -> bool:
    # Cheap tests first: called for every line of a message body.  A labelled
    # line has a colon; a bare label is a short line.
    if ":" in line:
        match = _LABEL_LINE.match(line)
        if match and label_key(match.group(1)):
            return True
    if "\t" in line:  # "Label<tab>value", as form mailers align their fields
        label = line.strip().partition("\t")[0]
        if label and len(label) <= 40 and label_key(label):
            return True
    if len(line.strip()) >= 42:
        return False
    bare = _BARE_LABEL.match(line)
    return bool(bare and label_key(bare.group(1)))


def _plausible(key: str, value: str) -> bool:
    """A value on the line after a bare label must look like that field."""
    if key == "email":
        return bool(EMAIL_PATTERN.search(value))
    if key == "phone":
        return sum(ch.isdigit() for ch in value) >= 5 and bool(
            re.fullmatch(r"[\d\s+()/.-]+", value)
        )
    return len(value) <= 120 or key == "message"


def detect_kind(text: str) -> str:
    lowered = text.lower()
    for kind, words in KINDS_BY_KEYWORD:
        if any(word in lowered for word in words):
            return kind
    return "inquiry"


def is_system_address(address: str) -> bool:
    """A mailer, web server or no-reply sender: never the customer."""
    return bool(_NOREPLY.match(address.split("@", 1)[0]))


def is_relay_address(address: str) -> bool:
    """A marketplace's per-conversation relay (``buyer-…@kontakt.mobile.de``)."""
    domain = address.rpartition("@")[2].lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in RELAY_DOMAINS)


def dealer_domains(dealer_addresses: frozenset[str]) -> frozenset[str]:
    """The domains the dealer owns: those of its addresses, minus mailbox providers."""
    return _dealer_domains(frozenset(dealer_addresses))


@lru_cache(maxsize=64)
def _dealer_domains(dealer_addresses: frozenset[str]) -> frozenset[str]:
    """:func:`dealer_domains`, once per dealer (every address check asks it)."""
    domains = {a.rpartition("@")[2].lower() for a in dealer_addresses if "@" in a}
    return frozenset(d for d in domains if d and d not in FREEMAIL_DOMAINS)


def is_dealer_address(address: str, dealer_addresses: frozenset[str]) -> bool:
    """One of the dealer's addresses or any address at a domain the dealer owns."""
    lowered = address.strip().lower()
    if lowered in dealer_addresses:
        return True
    domain = lowered.rpartition("@")[2]
    return any(domain == d or domain.endswith("." + d) for d in dealer_domains(dealer_addresses))


def choose_customer_email(
    labelled: str | None,
    view: MailView,
    dealer_addresses: frozenset[str],
    *,
    from_is_customer: bool = True,
) -> str | None:
    """The customer's address, in the order of issue 3 (FORMATS.md 1.1).

    1. a labelled e-mail field in the body;
    2. a ``Reply-To`` that is neither a system address nor the dealer's;
    3. ``From``: a marketplace relay address always counts; any other ``From``
       only if it is a person's address (not a mailer/no-reply, not the dealer
       or the dealer's domain) — a mail written directly by the customer, or a
       powermail form that sends with the customer's address — and only when
       ``from_is_customer`` (parsers of system-sent formats pass False);
    4. None.

    The dealer's own addresses and domain are rejected at every step, so a
    forwarding employee or the website mailer is never taken for the customer.
    """

    def acceptable(address: str | None, *, allow_system: bool = False) -> str | None:
        if not address:
            return None
        match = EMAIL_PATTERN.search(address)
        if not match:
            return None
        found = match.group(0)
        local, _, domain = found.rpartition("@")
        found = f"{local}@{domain.lower()}"
        if is_dealer_address(found, dealer_addresses):
            return None
        if is_system_address(found) and not allow_system:
            return None
        return found

    chosen = acceptable(labelled, allow_system=True)
    if chosen:
        return chosen
    for _, address in view.reply_to:
        chosen = acceptable(address)
        if chosen:
            return chosen
    for _, address in view.from_addresses:
        if is_relay_address(address):
            chosen = acceptable(address, allow_system=True)
        elif from_is_customer:
            chosen = acceptable(address)
        if chosen:
            return chosen
    return None
