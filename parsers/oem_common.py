"""What the OEM lead-system parsers share: recognition by several signals, sectioned fields.

No public samples of German OEM lead mails exist (FORMATS.md section 6), so
nothing here trusts a single string, least of all the exact sender domain: an
OEM module matches only when the brand shows up where a *system* puts it (From
display name, a sender-domain label, the subject) AND at least two structural
signals of a lead system are present (lead number, response deadline, system
name, brand-specific section titles), one of them a lead number or deadline.
A brand named in vehicle text means nothing: dealers sell many brands.

The body is read as labelled fields grouped by section (``Interessent``,
``Fahrzeug``, ``Inzahlungnahme``, ``Finanzierung`` ...), so the trade-in's
``Modell`` never becomes the wanted vehicle's model and a leasing rate never
becomes the price.  Lead numbers, configurator codes and licence plates are
read only to keep them *out* of the listing id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .adf_xml import contains_adf
from .context import ParseContext
from .fields import is_system_address
from .htmltext import html_text
from .message import MailView, clean_line
from .model import CustomerData, ParsedLead, VehicleData
from .normalize import known_make, parse_price, split_name
from .signals import sent_by

LEAD_NUMBER = re.compile(
    r"\b(?:lead[- ]?(?:id|nr\.?|nummer|number)|vorgangs-?(?:nr\.?|nummer)|"
    r"anfrage-?(?:nr\.?|nummer)|prozess-?(?:nr\.?|nummer)|auftrags-?nr\.?)\s*:",
    re.IGNORECASE,
)
DEADLINE = re.compile(
    r"innerhalb\s+(?:von\s+)?\d+\s*(?:stunden|std\.?|h\b|werktag)|bearbeitungsfrist|"
    r"reaktionsfrist|antwortfrist|r\u00fcckmeldung\s+bis|bis\s+sp\u00e4testens",
    re.IGNORECASE,
)
CONFIG_CODE = re.compile(
    r"\b(?:audi\s+code|vw\s+code|volkswagen\s+code|konfigurations-?code|"
    r"konfigurator-?code|config(?:uration)?\s+code)\s*:",
    re.IGNORECASE,
)
FORWARD_SEPARATOR = re.compile(
    r"^[ >]*(?:-{3,}\s*(?:urspr\u00fcngliche nachricht|original message|"
    r"weitergeleitete nachricht|forwarded message)\s*-{3,}|"
    r"-{5,}\s*(?:forwarded message|weitergeleitete nachricht)\s*-{5,})\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# "Lead 2718281 wurde an das Opel Call Center übergeben": the OEM took the lead away
# (seed 000 §4/5); both a call-centre word and a hand-over word must be present.
CALL_CENTRE = re.compile(
    r"call[\s-]?cent(?:er|re)|kundenkontakt-?cent(?:er|rum)|kunden-?dialog-?cent(?:er|rum)",
    re.IGNORECASE,
)
HANDED_OVER = re.compile(
    r"\b(?:übergeben|übernommen|weitergeleitet|entzogen|taken\s+over|transferred|handed\s+over)\b",
    re.IGNORECASE,
)
SCAN_CHARS = 30_000
MARKETPLACE_DOMAINS = (
    "mobile.de",
    "kleinanzeigen.de",
    "ebay-kleinanzeigen.de",
    "autoscout24.de",
    "autoscout24.com",
    "autoscout24.at",
    "autoscout24.ch",
    "autoscout24.be",
    "autoscout24.nl",
    "autoscout24.it",
    "autoscout24.fr",
    "marktplaats.nl",
)


@dataclass(frozen=True)
class Profile:
    """How one OEM's lead mails are recognised."""

    brand_words: tuple[str, ...]
    system_patterns: tuple[re.Pattern[str], ...]
    min_structural: int = 2


def brand_in_sender(view: MailView, words: tuple[str, ...]) -> str | None:
    """The first brand word in the From display name or equal to a sender-domain label.

    A domain *label* must equal the word (``opel`` in ``leads.opel.example``),
    so ``notopel.example`` gains nothing, and ``opel.de.evil.example`` gains
    one signal at most: the structural signals still have to be present.
    """
    for display, address in view.from_addresses:
        labels = re.split(r"[.\-]", address.rpartition("@")[2].lower())
        for word in words:
            if _has_word(display, word) or word in labels:
                return word
    return None


def brand_in_sender_or_subject(view: MailView, words: tuple[str, ...]) -> str | None:
    """:func:`brand_in_sender`, else the first brand word in the subject."""
    found = brand_in_sender(view, words)
    if found:
        return found
    subject = view.subject or ""
    return next((word for word in words if _has_word(subject, word)), None)


def structural_signals(text: str, profile: Profile) -> list[str]:
    """Names of the lead-system signals present in ``text`` (its head only: cheap)."""
    head = text[:SCAN_CHARS]
    found = []
    if LEAD_NUMBER.search(head):
        found.append("lead number")
    if DEADLINE.search(head):
        found.append("response deadline")
    found += [f"marker {p.pattern[:30]}" for p in profile.system_patterns if p.search(head)]
    return found


def oem_matches(view: MailView, profile: Profile) -> bool:
    """Brand in a system position plus enough structural signals.

    The brand in the sender counts more than the brand in the subject (a
    forward or a website form can name the brand in the subject), so a
    subject-only brand needs one structural signal more.  Marketplace mails
    and ADF documents are never OEM leads: their own parsers own them.
    """
    if brand_in_sender(view, profile.brand_words):
        needed = profile.min_structural
    elif brand_in_sender_or_subject(view, profile.brand_words):
        needed = profile.min_structural + 1
    else:
        return False
    if sent_by(view, MARKETPLACE_DOMAINS):
        return False
    text = view.text
    if contains_adf(text) or contains_adf(view.html):
        return False
    if _enough(structural_signals(text, profile), needed):
        return True
    if view.html:
        return _enough(structural_signals(html_text(view.html), profile), needed)
    return False


def _enough(signals: list[str], needed: int) -> bool:
    """Enough signals, one of them a lead number or a response deadline.

    A dealer's own web form can carry the brand in its sender name ("Ihr
    Hyundai-Partner") and brand-like fields (``Kennzeichen:``), but it does
    not number its leads or promise a response time to the dealer.
    """
    core = "lead number" in signals or "response deadline" in signals
    return core and len(signals) >= needed


def _has_word(text: str, word: str) -> bool:
    return bool(re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE))


# --- fields by section -------------------------------------------------------------

LABELS: dict[str, str] = {
    "anrede": "salutation",
    "titel": "title",
    "akad. titel": "title",
    "vorname": "first_name",
    "nachname": "last_name",
    "name": "name",
    "name des interessenten": "name",
    "kunde": "name",
    "firma": "company",
    "straße": "street",
    "strasse": "street",
    "straße / hausnummer": "street",
    "straße und hausnummer": "street",
    "str. / nr.": "street",
    "adresse": "street",
    "plz": "postcode",
    "postleitzahl": "postcode",
    "ort": "city",
    "wohnort": "city",
    "plz / ort": "postcode_city",
    "plz/ort": "postcode_city",
    "land": "country",
    "telefon": "phone",
    "telefon / mobil": "phone",
    "telefon/mobil": "phone",
    "telefonnummer": "phone",
    "tel.": "phone",
    "rufnummer": "phone",
    "mobil": "mobile",
    "mobilnummer": "mobile",
    "mobiltelefon": "mobile",
    "handy": "mobile",
    "e-mail": "email",
    "email": "email",
    "e-mail-adresse": "email",
    "e-mail adresse": "email",
    "marke": "make",
    "hersteller": "make",
    "modell": "model",
    "modellwunsch": "vehicle",
    "gewünschtes modell": "vehicle",
    "wunschmodell": "vehicle",
    "fahrzeug": "vehicle",
    "interessiert an": "vehicle",
    "ausstattung": "trim",
    "ausstattungslinie": "trim",
    "version": "trim",
    "motorisierung": "engine",
    "fin": "vin",
    "fahrgestellnummer": "vin",
    "fahrzeug-identifizierungsnummer": "vin",
    "vin": "vin",
    "kennzeichen": "plate",
    "amtliches kennzeichen": "plate",
    "kilometerstand": "mileage",
    "km-stand": "mileage",
    "laufleistung": "mileage",
    "erstzulassung": "first_registration",
    "ez": "first_registration",
    "uvp": "price",
    "listenpreis": "price",
    "fahrzeugpreis": "price",
    "fahrzeugpreis (uvp)": "price",
    "kaufpreis": "price",
    "preis": "price",
    "gesamtpreis": "price",
    "hauspreis": "price",
    "preisvorstellung": "price",
    "monatliche rate": "monthly",
    "rate": "monthly",
    "leasingrate": "monthly",
    "monatsrate": "monthly",
    "anzahlung": "downpayment",
    "sonderzahlung": "downpayment",
    "leasing-sonderzahlung": "downpayment",
    "laufzeit": "term",
    "interne nr.": "stock_number",
    "interne nummer": "stock_number",
    "bestandsnummer": "stock_number",
    "lead-id": "lead_number",
    "lead id": "lead_number",
    "lead-nr.": "lead_number",
    "lead-nummer": "lead_number",
    "anfrage-nr.": "lead_number",
    "anfragenummer": "lead_number",
    "vorgangsnummer": "lead_number",
    "audi code": "config_code",
    "vw code": "config_code",
    "konfigurationscode": "config_code",
    "konfigurator-code": "config_code",
    "anfrageart": "request_type",
    "art der anfrage": "request_type",
    "anfragetyp": "request_type",
    "leadtyp": "request_type",
    "typ": "request_type",
    "kampagne": "campaign",
    "wunschtermin": "appointment",
    "gewünschter termin": "appointment",
    "terminwunsch": "appointment",
    "gewünschte leistung": "service",
    "leistung": "service",
    "serviceleistung": "service",
    "nachricht": "message",
    "ihre nachricht": "message",
    "nachricht des interessenten": "message",
    "nachricht des kunden": "message",
    "kommentar": "message",
    "bemerkung": "message",
    "anmerkungen": "message",
    "anmerkung": "message",
}

SECTIONS: dict[str, str] = {
    "interessent": "customer",
    "kunde": "customer",
    "kundendaten": "customer",
    "kontaktdaten": "customer",
    "persönliche angaben des interessenten": "customer",
    "persönliche angaben": "customer",
    "fahrzeug": "vehicle",
    "wunschfahrzeug": "vehicle",
    "fahrzeugdaten": "vehicle",
    "ihr fahrzeug": "vehicle",
    "fahrzeug des kunden": "vehicle",
    "konfiguration": "vehicle",
    "ihre konfiguration": "vehicle",
    "inzahlungnahme": "trade_in",
    "inzahlungnahme-fahrzeug": "trade_in",
    "fahrzeug zur inzahlungnahme": "trade_in",
    "inzahlungnahmefahrzeug": "trade_in",
    "finanzierung": "finance",
    "leasing": "finance",
    "finanzierungswunsch": "finance",
    "finanzierung / leasing": "finance",
    "leasingangebot": "finance",
    "anfragen und informationen des interessenten": "request",
    "anfrage": "request",
    "lead-informationen": "request",
    "termin": "request",
    "nachricht": "message",
    "nachricht des interessenten": "message",
}
_LABEL_LINE = re.compile(r"^\s*[*\u2022-]?\s*([^\n:]{1,45}?)\s*:\s*(.*)$")
_SEPARATOR = re.compile(r"^\s*[-=_*]{3,}\s*$")


@dataclass
class Sectioned:
    """Labelled values by section; ``get`` looks through the sections asked for."""

    values: dict[tuple[str, str], str] = field(default_factory=dict)

    def get(
        self, key: str, sections: tuple[str, ...] = ("customer", "request", "top")
    ) -> str | None:
        for section in sections:
            value = self.values.get((section, key))
            if value:
                return value
        return None

    def has_section(self, section: str) -> bool:
        return any(s == section for s, _ in self.values)


def sectioned_fields(text: str, footer: Callable[[str], bool] | None = None) -> Sectioned:
    """``label: value`` lines grouped under the section heading above them.

    A ``message`` value runs over the following lines until the next label,
    heading, separator line or a footer line (``footer(line)`` is True;
    :func:`default_footer` unless given).
    """
    footer = footer or default_footer
    found = Sectioned()
    section = "top"
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip().rstrip(":").strip().lower()
        heading = SECTIONS.get(stripped)
        if heading is not None and heading != "message":
            section = heading
            index += 1
            continue
        match = _LABEL_LINE.match(line)
        key = LABELS.get(match.group(1).strip().lower()) if match else None
        if heading == "message":
            key, value = "message", ""
        elif match is None or key is None:
            index += 1
            continue
        else:
            value = match.group(2).strip()
        if key == "message":
            body = [value] if value else []
            index += 1
            while index < len(lines) and not _ends_message(lines[index], footer):
                body.append(lines[index].rstrip())
                index += 1
            text_value = "\n".join(body).strip()
            if text_value:
                found.values.setdefault(("message", "message"), text_value)
            continue
        if not value and index + 1 < len(lines) and not _LABEL_LINE.match(lines[index + 1]):
            value = lines[index + 1].strip()
        cleaned = clean_line(value, 255)
        if cleaned:
            found.values.setdefault((section, key), cleaned)
        index += 1
    return found


def _ends_message(line: str, footer: Callable[[str], bool] | None) -> bool:
    stripped = line.strip()
    if stripped == "--" or _SEPARATOR.match(stripped) or stripped.rstrip(":").lower() in SECTIONS:
        return True
    match = _LABEL_LINE.match(line)
    if match and match.group(1).strip().lower() in LABELS:
        return True
    return bool(footer and stripped and footer(stripped))


def lead_text(view: MailView) -> tuple[str, bool]:
    """The text to read and whether it was a forward: the quoted original if forwarded.

    The plain part is used unless the HTML part carries more labelled lines
    (a "view in browser" text part).  In a forward, everything above the
    separator is the employee's note and signature, never lead data.
    """
    text = view.text
    if view.html:
        from_html = html_text(view.html)
        if _label_count(from_html) > _label_count(text):
            text = from_html
    separators = list(FORWARD_SEPARATOR.finditer(text))
    if not separators:
        return text, False
    quoted = text[separators[-1].end() :]
    quoted = "\n".join(re.sub(r"^>\s?", "", line) for line in quoted.splitlines())
    return quoted, True


def _label_count(text: str) -> int:
    count = 0
    for line in text.splitlines():
        match = _LABEL_LINE.match(line)
        if match and match.group(1).strip().lower() in LABELS:
            count += 1
    return count


# --- building the lead --------------------------------------------------------------

NO_MESSAGE = re.compile(
    r"^(?:der kunde hat keine nachricht eingegeben|keine nachricht|keine angabe|-|/)\.?$",
    re.IGNORECASE,
)
KIND_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("test_drive", ("probefahrt", "testfahrt", "test drive", "testdrive")),
    (
        "service",
        ("service", "werkstatt", "inspektion", "wartung", "reparatur", "reifenwechsel"),
    ),
    ("financing", ("finanzierung", "leasing", "financing", "kredit")),
    ("trade_in", ("inzahlungnahme", "ankauf", "fahrzeugbewertung")),
    ("inquiry", ("angebot", "anfrage", "kauf", "verkauf", "information", "prospekt")),
)


def kind_from(*texts: str | None) -> str | None:
    """The lead kind named first in the first of ``texts`` that names one.

    The earliest word wins, so "Angebot mit Inzahlungnahme" is an inquiry
    (the trade-in goes to ``trade_in``) and "Ankaufanfrage" a trade-in.
    """
    for text in texts:
        lowered = (text or "").lower()
        best: tuple[int, str] | None = None
        for kind, words in KIND_WORDS:
            for word in words:
                position = lowered.find(word)
                if position >= 0 and (best is None or position < best[0]):
                    best = (position, kind)
        if best is not None:
            return best[1]
    return None


def split_phones(value: str | None) -> str | None:
    """The first of ``0711 123456 / 0171 2345678``; ``0711 / 123456`` stays one number."""
    if not value:
        return None
    parts = [p.strip() for p in re.split(r"\s+/\s+|\s*;\s*|\s*,\s*", value) if p.strip()]
    if len(parts) > 1 and all(sum(c.isdigit() for c in p) >= 6 for p in parts):
        return parts[0]
    return value.strip() if sum(c.isdigit() for c in value) >= 5 else None


def customer_from(fields: Sectioned, view: MailView, ctx: ParseContext) -> CustomerData:
    """The interested party from the customer section; never the From of a system mail."""
    customer = CustomerData()
    first, last = fields.get("first_name"), fields.get("last_name")
    full = fields.get("name")
    if first or last:
        salutation, title, _, _ = split_name(" ".join(p for p in (first, last) if p))
        customer.first_name, customer.last_name = first, last
        customer.salutation = salutation
        customer.title = title
    elif full:
        salutation, title, f_name, l_name = split_name(full)
        customer.salutation, customer.title = salutation, title
        customer.first_name, customer.last_name = f_name, l_name
    labelled_salutation = fields.get("salutation")
    if labelled_salutation:
        customer.salutation = split_name(labelled_salutation + " X")[0] or labelled_salutation
    customer.title = fields.get("title") or customer.title
    customer.name = (
        " ".join(p for p in (customer.first_name, customer.last_name) if p)
        or fields.get("company")
        or None
    )
    customer.email = _customer_email(fields.get("email"), view, ctx)
    customer.phone = split_phones(fields.get("phone")) or split_phones(fields.get("mobile"))
    customer.street = fields.get("street")
    customer.postcode = fields.get("postcode")
    customer.city = fields.get("city")
    customer.country = fields.get("country")
    both = fields.get("postcode_city")
    if both and not customer.postcode:
        match = re.match(r"(?:[A-Z]{1,2}-)?(\d{4,5})\s+(.+)", both)
        if match:
            customer.postcode, customer.city = match.group(1), match.group(2)
    return customer


_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _customer_email(labelled: str | None, view: MailView, ctx: ParseContext) -> str | None:
    """The labelled address; else a non-system Reply-To.  Never ``From``: it is the system
    (or, in a forward, the employee)."""
    candidates = [labelled] + [a for _, a in view.reply_to]
    for candidate in candidates:
        match = _EMAIL.search(candidate or "")
        if not match:
            continue
        address = match.group(0)
        if address.lower() in ctx.dealer_addresses or is_system_address(address):
            continue
        return address
    return None


def vehicle_from(
    fields: Sectioned, sections: tuple[str, ...], default_make: str | None
) -> VehicleData:
    """Make, model, VIN, price, mileage from ``sections``; never a listing id.

    An OEM lead's number, configurator code or licence plate identifies the
    lead or a car, not a marketplace ad, so ``listing_id`` stays empty.
    """
    make = fields.get("make", sections)
    model = fields.get("model", sections)
    combined = fields.get("vehicle", sections)
    if combined and not model:
        words = combined.split()
        if len(words) > 1 and known_make(words[0]):
            make = make or words[0]
            model = " ".join(words[1:])
        elif len(words) > 2 and known_make(" ".join(words[:2])):
            make = make or " ".join(words[:2])
            model = " ".join(words[2:])
        else:
            model = combined
    elif model:
        words = model.split()
        if len(words) > 1 and known_make(words[0]):
            make = make or words[0]
            model = " ".join(words[1:])
    trim = fields.get("trim", sections)
    if model and trim and trim.lower() not in model.lower():
        model = f"{model} {trim}"
    vehicle = VehicleData(
        make=make or (default_make if model else None),
        model=model,
        vin=fields.get("vin", sections),
        stock_number=fields.get("stock_number", sections),
        price=parse_price(fields.get("price", sections)),
        first_registration=fields.get("first_registration", sections),
    )
    mileage = fields.get("mileage", sections)
    if mileage:
        digits = re.sub(r"\D", "", mileage.split(",")[0])
        vehicle.mileage = int(digits) if digits else None
    return vehicle


_FOOTER_STARTS = (
    "dies ist eine automatisch",
    "diese e-mail wurde automatisch",
    "diese nachricht wurde automatisch",
    "bitte antworten sie nicht",
    "bitte nicht auf diese",
    "bitte bearbeiten sie den lead",
    "bitte bearbeiten sie die anfrage",
    "bitte kontaktieren sie den interessenten",
    "bitte kontaktieren sie den kunden",
    "mit freundlichen grüßen",
    "impressum",
)
_SYSTEM_WORDS = re.compile(r"\b(?:interessent\w*|kunden?|lead\w*|anfrage)\b", re.IGNORECASE)


def default_footer(line: str) -> bool:
    """System footers that end a message block (deadline reminders, no-reply notes).

    Deadline wording counts only next to a word the system uses about the
    customer: "bitte bis spätestens Freitag" is the customer's own sentence.
    """
    lowered = line.lower()
    if lowered.startswith(_FOOTER_STARTS):
        return True
    return bool(DEADLINE.search(lowered) and _SYSTEM_WORDS.search(lowered))


def clean_message(value: str | None) -> str | None:
    if not value or NO_MESSAGE.match(value.strip()):
        return None
    return value


def looks_like_test(customer: CustomerData) -> tuple[bool, bool]:
    """(test e-mail, test name): OEM routers suppress leads with both."""
    email = (customer.email or "").lower()
    test_email = email.startswith("test@") or email.endswith("@test.com")
    names = {(customer.first_name or "").lower(), (customer.last_name or "").lower()}
    test_name = bool(names & {"test", "tester", "testkunde"})
    return test_email, test_name


def _reference(value: str | None) -> str | None:
    """The source's lead number as one token (``2718281``, ``VWD-2026-771203``)."""
    token = (value or "").strip().split()[:1]
    return token[0][:64] if token else None


def build_lead(
    view: MailView,
    ctx: ParseContext,
    *,
    name: str,
    source: str,
    default_make: str,
    default_kind: str,
    footer: Callable[[str], bool] | None = None,
) -> ParsedLead:
    """The shared OEM extraction: sectioned fields -> customer, vehicle, trade-in, kind."""
    text, forwarded = lead_text(view)
    fields = sectioned_fields(text, footer)
    lead = ParsedLead(
        parser=name, source=source, subject=view.subject, warnings=list(view.warnings)
    )
    if forwarded:
        lead.warnings.append("forwarded lead: parsed from the quoted original")
    lead.customer = customer_from(fields, view, ctx)
    lead.vehicle = vehicle_from(fields, ("vehicle", "request", "top"), default_make)
    if fields.has_section("trade_in"):
        lead.trade_in = vehicle_from(fields, ("trade_in",), None)
        lead.trade_in.stock_number = None
    lead.message = clean_message(fields.get("message", ("message",)))
    lead.source_ref = _reference(fields.get("lead_number", ("request", "top", "customer")))
    head = f"{view.subject or ''}\n{text[:2000]}"
    if lead.source_ref and CALL_CENTRE.search(head) and HANDED_OVER.search(head):
        lead.handed_over = True
        lead.non_lead_reason = f"the source's call centre took lead {lead.source_ref} over"
        return lead
    request_type = fields.get("request_type", ("request", "top", "customer"))
    campaign = fields.get("campaign", ("request", "top"))
    lead.campaign = " ".join((campaign or request_type or "").split())[:128] or None
    lead.kind = kind_from(request_type, campaign) or kind_from(view.subject) or default_kind
    if lead.kind == "inquiry" and fields.has_section("finance"):
        lead.kind = "financing"
    test_email, test_name = looks_like_test(lead.customer)
    if test_email and test_name:
        lead.non_lead_reason = "test lead: test name and test e-mail address"
        lead.warnings.append("OEM test lead (test name and test address): not a customer")
        return lead
    if test_email or test_name:
        lead.warnings.append("looks like a test lead (test name or test address)")
    found = sum(
        1
        for value in (
            lead.customer.name,
            lead.customer.email,
            lead.customer.phone,
            lead.vehicle.model,
            lead.message,
        )
        if value
    )
    lead.is_lead = lead.customer.has_contact()
    if lead.is_lead:
        lead.confidence = min(0.95, 0.5 + 0.09 * found)
    else:
        lead.confidence = 0.1
        lead.warnings.append("no customer e-mail address or phone number in the OEM lead")
    return lead
