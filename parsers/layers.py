"""The layered extractor: the source parser's lead completed by general readers, with provenance.

Where it sits: ``extract_lead`` runs the registry's parser, then
:func:`complete`, then ``finalize``.  Layers, strongest first:

1. the **source parser** (it knows which id is a listing id, which amount is
   the price, where the relay address is);
2. the **general reader** (:mod:`.reader`: any label layout, any lexicon word);
3. the **scanners** (:mod:`.scanners`: phone numbers, prices, VINs, "(Nr. …)"
   in the customer's own words);
4. the **catalogue** (:mod:`.catalogue`: make and model in an offer line,
   the subject or prose).

A lower layer only fills a gap; every field records which layer produced it
(``lead.provenance``) and what the other layers offered (``lead.losers``).
Where the source parser and the general reader disagree on an identifying
field, the source parser still wins but the confidence drops and a warning
asks for a check ("please check" in the web UI) instead of a silent guess.
Non-leads (bounces, notices, hand-overs) are left as the parser made them.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache

from . import catalogue, reader, scanners
from .boilerplate import strip_boilerplate
from .context import ParseContext
from .fields import EMAIL_PATTERN, is_dealer_address, is_system_address
from .htmltext import html_text
from .lexicon import is_weak_label
from .message import MailView, clean_line
from .model import Loser, Origin, ParsedLead, VehicleData
from .normalize import clean_vin, normalise_make, parse_price, phone_e164, split_name

SOURCE, GENERAL, SCANNER, CATALOGUE, SUBJECT = (
    "source parser",
    "general reader",
    "scanner",
    "catalogue",
    "subject",
)
_CUSTOMER_KEYS = ("name", "email", "phone", "street", "postcode", "city", "country")
_VEHICLE_KEYS = (
    "vin",
    "listing_id",
    "stock_number",
    "price",
    "mileage",
    "first_registration",
)
# disagreement on these means one of the two readers took the wrong thing
_IDENTIFYING = ("customer.email", "customer.phone", "vehicle.vin", "vehicle.price")
CONFLICT_PENALTY = 0.2
_FREE_FORM_SOURCES = ("website", "unknown")
# structured formats: the source parser reads every field there is; prose layers add noise
_STRUCTURED = frozenset({"adf"})
# the marketplace parsers' reason when they recognised nothing ("mobile.de notice: <subject>")
_NOTHING_FOUND = re.compile(r"^(?:mobile\.de|kleinanzeigen|autoscout24) notice: ")
_PERSON_KEYS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "salutation",
        "email",
        "phone",
        "street",
        "postcode",
        "city",
        "postcode_city",
        "country",
        "message",
    }
)
_NO_CONTACT = ("without a customer e-mail", "no customer e-mail")


def complete(lead: ParsedLead, view: MailView, ctx: ParseContext) -> ParsedLead:
    """Record the source parser's fields, then fill the gaps from the lower layers."""
    _record_source(lead)
    if lead.handed_over or lead.parser in _STRUCTURED:
        return lead
    if lead.non_lead_reason:
        return _revive(lead, view, ctx)
    return _layers(lead, view, ctx)


def _revive(lead: ParsedLead, view: MailView, ctx: ParseContext) -> ParsedLead:
    """A platform mail its parser found nothing in ("… notice: <subject>") may be an inquiry
    in a layout the parser does not know: it becomes a lead only if the general reader finds
    a labelled customer address or phone *and* a labelled message."""
    if not _NOTHING_FOUND.match(lead.non_lead_reason or ""):
        return lead
    trial = copy.deepcopy(lead)
    trial.non_lead_reason = None
    _layers(trial, view, ctx)
    labelled = [
        trial.provenance.get(path)
        for path in ("customer.email", "customer.phone")
        if path not in lead.provenance
    ]
    message = trial.provenance.get("message")
    if not any(o and o.reader == GENERAL for o in labelled) or not message:
        return lead
    if message.reader != GENERAL:
        return lead
    trial.is_lead = True
    trial.confidence = max(trial.confidence, 0.45)
    trial.warnings.append(
        f"{lead.parser} saw no inquiry ({lead.non_lead_reason}); the general reader found one"
    )
    return trial


def _layers(lead: ParsedLead, view: MailView, ctx: ParseContext) -> ParsedLead:
    """Layers 2-4 over a lead (see the module docstring)."""
    from .generic import unquoted

    # a quoted earlier mail (the dealer's own offer, phone, price) is never this lead's data
    # the fields and the customer's words stand in a mail's head: a 250 KB body is read at
    # its first 60 KB (the parse p99 of RELIABILITY.md M2 holds for mails up to 1 MB)
    head = view.text[:_LAYER_TEXT_CHARS]
    text = unquoted(head)
    markup = view.html if text.strip() == head.strip() else None
    pairs: list[reader.Pair] = []
    if not _complete(lead) or len(view.text) <= _ALWAYS_READ_CHARS:
        pairs = reader.read_all(text, markup)
        if markup and (len(view.text) < 600 or sum(p.section == "main" for p in pairs) < 3):
            from_html = html_text(_BLOCK_ENDS.sub("<br>", markup[:_HTML_READ_CHARS]))
            pairs += reader.read_text(from_html)
            if len(view.text) < 600:
                text = f"{text}\n{from_html}"  # a "view in browser" stub: the HTML is the mail
    # a trade-in or financing block holds the customer's car and money, never another person:
    # customer fields count wherever they stand
    main = [
        p
        for p in pairs
        if p.section == "main" or (p.key in _PERSON_KEYS and p.section != "marketing")
    ]
    _fill_message(lead, main)
    _fill_customer(lead, main, ctx)
    _name_from_headline(lead, text)
    _name_from_signoff(lead)
    _fill_vehicle(lead, main)
    _scan(lead, text, view.subject, ctx)
    _catalogue(lead, main, view, text)
    _phone_country(lead, view, ctx)
    _kind(lead)
    _capture_extras(lead, pairs)
    _settle_lead(lead)
    return lead


# Reading costs time in proportion to the text (bench/parse.py keeps parsing at >= 0.4x
# the bare stdlib): a long mail whose parser already found the whole lead is not re-read
# for confirmation; a short one (every real lead form) always is.
_ALWAYS_READ_CHARS = 3_000
_LAYER_TEXT_CHARS = 60_000
# the HTML a second time as text: its head holds the fields (a form is never 100 KB)
_HTML_READ_CHARS = 100_000
# a VIN is written next to one of these words (plain substring tests: cheap on long mails)
_VIN_WORDS = (
    "fin:",
    "fin ",
    "vin:",
    "vin ",
    "vin#",
    "fahrgestell",
    "chassis",
    "telaio",
    "identifi",
)


def _names_a_vin(text: str) -> bool:
    lowered = text[: scanners.FIELD_SCAN_CHARS].lower()
    return any(word in lowered for word in _VIN_WORDS)


def _complete(lead: ParsedLead) -> bool:
    customer, vehicle = lead.customer, lead.vehicle
    return bool(
        customer.name
        and customer.email
        and customer.phone
        and lead.message
        and (vehicle.model or vehicle.make)
    )


# --- provenance -----------------------------------------------------------------------


def _record_source(lead: ParsedLead) -> None:
    for group, data in (("customer", lead.customer), ("vehicle", lead.vehicle)):
        for name, value in vars(data).items():
            if value is not None and value != "" and f"{group}.{name}" not in lead.provenance:
                lead.provenance[f"{group}.{name}"] = Origin(SOURCE, lead.parser, str(value))
    if lead.message and "message" not in lead.provenance:
        lead.provenance["message"] = Origin(SOURCE, lead.parser, lead.message[:80])


def _offer(lead: ParsedLead, path: str, value: object, reader_name: str, detail: str) -> bool:
    """Set ``path`` to ``value`` if empty (True), else record ``value`` as a loser."""
    group, _, name = path.partition(".")
    target = lead.customer if group == "customer" else lead.vehicle
    current = getattr(target, name)
    if value in (None, ""):
        return False
    if current in (None, ""):
        setattr(target, name, value)
        lead.provenance[path] = Origin(reader_name, detail, str(value))
        return True
    if _same(path, current, value):
        return False
    winner = lead.provenance.get(path)
    why = f"{winner.reader} wins" if winner else "an earlier value wins"
    lead.losers.setdefault(path, []).append(Loser(reader_name, detail, str(value), why))
    return False


def _same(path: str, left: object, right: object) -> bool:
    if path == "customer.phone":
        return _digits(left) == _digits(right) or _e164(str(left)) == _e164(str(right))
    if path == "vehicle.price":
        return abs(float(left) - float(right)) < 1.0  # type: ignore[arg-type]
    a = re.sub(r"[\W_]+", "", str(left)).lower()
    b = re.sub(r"[\W_]+", "", str(right)).lower()
    return a == b or (bool(a) and bool(b) and (a in b or b in a))


@lru_cache(maxsize=256)
def _e164(value: str) -> str | None:
    return phone_e164(value)


def _digits(value: object) -> str:
    return re.sub(r"\D", "", str(value))[-9:]


# --- layer 2: the general reader --------------------------------------------------------


def _detail(pair: reader.Pair) -> str:
    return f"label {pair.label!r} ({pair.layout})"


def _fill_message(lead: ParsedLead, pairs: list[reader.Pair]) -> None:
    blocks = [p for p in pairs if p.key == "message"]
    if lead.message and blocks and lead.source in _FREE_FORM_SOURCES:
        best = max(blocks, key=lambda p: len(p.value))
        if _overlap(lead.message, best.value) < 0.5:
            # a free-form parser took the whole (stub) text; a labelled block is the message
            lead.losers.setdefault("message", []).append(
                Loser(SOURCE, lead.parser, lead.message[:80], "a labelled message block wins")
            )
            lead.message = None
    if lead.message and blocks and _holds_fields(lead.message):
        best = max(blocks, key=lambda p: len(p.value))
        if len(best.value) < len(lead.message):
            # the parser took the whole mail (fields and all); the labelled block is the message
            lead.losers.setdefault("message", []).append(
                Loser(SOURCE, lead.parser, lead.message[:80], "it holds the mail's field lines")
            )
            lead.message = None
    if lead.message:
        cleaned = strip_boilerplate(lead.message)
        if cleaned != lead.message.strip() and cleaned:
            lead.losers.setdefault("message", []).append(
                Loser(SOURCE, "platform footer", lead.message[len(cleaned) :][:80], "boilerplate")
            )
            lead.message = cleaned
        return
    if not blocks:
        return
    best = max(blocks, key=lambda p: len(p.value))
    message = strip_boilerplate(best.value)
    if message:
        lead.message = message
        lead.provenance["message"] = Origin(GENERAL, _detail(best), message[:80])


_WORD = re.compile(r"\w{3,}")


def _holds_fields(message: str) -> bool:
    """Two or more e-mail/phone/name label lines: a message that is really the whole form."""
    if len(message) > 20_000:
        return False
    keys = [p.key for p in reader.read_text(message[:3000]) if p.key in ("email", "phone", "name")]
    return len(keys) >= 2


def _overlap(mine: str, theirs: str) -> float:
    """Share of the words of ``mine`` that ``theirs`` has too (0 when ``mine`` has none)."""
    words = set(_WORD.findall(mine[:600].lower()))
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(theirs[:3000].lower()))) / len(words)


def _fill_customer(lead: ParsedLead, pairs: list[reader.Pair], ctx: ParseContext) -> None:
    customer = lead.customer
    names = {p.key: p for p in pairs if p.key in ("name", "first_name", "last_name")}
    by_key: dict[str, list[reader.Pair]] = {}
    for pair in pairs:
        by_key.setdefault(pair.key, []).append(pair)
    one_word = len((customer.name or "").split()) == 1 and not customer.salutation
    if not customer.name and not customer.last_name and names:
        _name_from_pairs(lead, names)
    elif one_word and "first_name" in names and ("last_name" in names or "name" in names):
        # "Nom : Dubois" read alone as the whole name; "Prénom : Amélie" completes it
        lead.losers.setdefault("customer.name", []).append(
            Loser(SOURCE, lead.parser, customer.name or "", "first and last name are labelled")
        )
        customer.name = customer.first_name = customer.last_name = None
        _name_from_pairs(lead, names)
    elif names.get("name"):
        _offer(lead, "customer.name", names["name"].value, GENERAL, _detail(names["name"]))
    for pair in by_key.get("email", []):
        found = EMAIL_PATTERN.search(pair.value)
        if not found:
            continue
        address = found.group(0)
        if is_dealer_address(address, ctx.dealer_addresses) or is_system_address(address):
            continue
        _offer(lead, "customer.email", address, GENERAL, _detail(pair))
        break
    for pair in by_key.get("phone", [])[:1]:
        _offer(lead, "customer.phone", _first_phone(pair.value), GENERAL, _detail(pair))
    for key in ("street", "postcode", "city", "country"):
        for pair in by_key.get(key, [])[:1]:
            _offer(lead, f"customer.{key}", pair.value, GENERAL, _detail(pair))
    both = by_key.get("postcode_city", [])
    if both and not customer.postcode:
        match = re.match(r"((?:[A-Z]{1,2}-)?\d{4,5})\s+(.+)", both[0].value)
        if match:
            _offer(lead, "customer.postcode", match.group(1), GENERAL, _detail(both[0]))
            _offer(lead, "customer.city", match.group(2), GENERAL, _detail(both[0]))


def _name_from_headline(lead: ParsedLead, text: str) -> None:
    """ "Neue Nachricht von Timo Reichert zu deinem Inserat": a platform's headline names him."""
    if lead.customer.name or lead.customer.last_name or lead.customer.first_name:
        return
    hit = next(iter(scanners.headline_names(text)), None)
    if hit is None or not reader.plausible("name", hit.value):
        return
    _set_name(lead, hit.value, Origin(SCANNER, f"headline: {hit.context!r}", hit.value))


def _set_name(lead: ParsedLead, written: str, origin: Origin) -> None:
    salutation, title, first, last = split_name(written)
    customer = lead.customer
    customer.salutation = customer.salutation or salutation
    customer.title = customer.title or title
    customer.first_name, customer.last_name = first, last
    customer.name = clean_line(" ".join(p for p in (first, last) if p)) or written
    lead.provenance["customer.name"] = Origin(origin.reader, origin.detail, customer.name)


def _name_from_signoff(lead: ParsedLead) -> None:
    """A name only in the sign-off ("Viele Grüße\nPeter Lustig") of the customer's message."""
    from .website import signature_name

    if lead.customer.name or lead.customer.last_name or not lead.message:
        return
    written = signature_name(lead.message)
    if written:
        _set_name(lead, written, Origin(SCANNER, "sign-off of the message", written))


def _first_phone(value: str) -> str:
    """The first of ``0711 123456 / 0171 2345678``; ``0711 / 123456`` stays one number."""
    parts = [p.strip() for p in re.split(r"\s+/\s+|\s*;\s*|\s*,\s*|\s+oder\s+|\s+or\s+", value)]
    parts = [p for p in parts if p]
    if len(parts) > 1 and all(sum(c.isdigit() for c in p) >= 6 for p in parts):
        return parts[0]
    return re.sub(r"\s*\((?:mobil|privat|mobile|home|work|tagsüber|abends)\)\s*$", "", value)


def _name_from_pairs(lead: ParsedLead, names: dict[str, reader.Pair]) -> None:
    customer = lead.customer
    first, last, full = names.get("first_name"), names.get("last_name"), names.get("name")
    if full and first and not last and first.value.lower() not in full.value.lower():
        last, full = full, None  # French forms: "Nom" + "Prénom"
    if last:
        salutation, title, f_name, _ = split_name(
            f"{first.value if first else ''} {last.value}".strip()
        )
        customer.first_name = first.value if first else f_name
        customer.last_name = last.value
        customer.salutation = customer.salutation or salutation
        customer.title = customer.title or title
        source = last
    elif full:
        salutation, title, f_name, l_name = split_name(full.value)
        customer.first_name, customer.last_name = f_name, l_name
        customer.salutation = customer.salutation or salutation
        customer.title = customer.title or title
        source = full
    else:
        return
    customer.name = clean_line(
        " ".join(p for p in (customer.first_name, customer.last_name) if p)
    ) or (full.value if full else None)
    if customer.name:
        lead.provenance["customer.name"] = Origin(GENERAL, _detail(source), customer.name)


def _fill_vehicle(lead: ParsedLead, pairs: list[reader.Pair]) -> None:
    by_key: dict[str, reader.Pair] = {}
    weak: reader.Pair | None = None
    for pair in pairs:
        if pair.key == "stock_number" and is_weak_label(pair.label):
            weak = weak or pair
            continue
        by_key.setdefault(pair.key, pair)
    if weak is not None:
        # "Fahrzeug-ID" is the dealer's number, unless the dealer's number has its own
        # label ("Ihre Bestandsnummer"): then it is the portal's id for the car
        by_key.setdefault("listing_id" if "stock_number" in by_key else "stock_number", weak)
    converters = {
        "vin": clean_vin,
        "price": parse_price,
        "mileage": _mileage,
        "listing_id": _token,
        "stock_number": _stock,
        "first_registration": lambda v: clean_line(v, 32),
    }
    for key in _VEHICLE_KEYS:
        pair = by_key.get(key)
        if pair is not None:
            _offer(lead, f"vehicle.{key}", converters[key](pair.value), GENERAL, _detail(pair))
    make, model = by_key.get("make"), by_key.get("model")
    if make:
        _offer(lead, "vehicle.make", normalise_make(make.value), GENERAL, _detail(make))
    if model:
        value = model.value
        if make and value.lower().startswith(make.value.lower() + " "):
            value = value[len(make.value) + 1 :]
        _offer(lead, "vehicle.model", value, GENERAL, _detail(model))


def _mileage(value: str) -> int | None:
    found = re.search(r"\d{1,3}(?:[.,' \u00a0]\d{3})+|\d+", value)
    return int(re.sub(r"\D", "", found.group(0))) if found else None


def _token(value: str) -> str | None:
    token = value.split()[0].strip(".,;:()#") if value.split() else ""
    return token if any(ch.isdigit() for ch in token) and len(token) <= 40 else None


def _stock(value: str) -> str | None:
    """A dealer's stock number; a licence plate never is one."""
    if scanners.is_plate(value):
        return None
    return _token(value)


# --- layer 3: scanners ----------------------------------------------------------------


def _scan(lead: ParsedLead, text: str, subject: str | None, ctx: ParseContext) -> None:
    free_form = lead.source in _FREE_FORM_SOURCES
    own_words = lead.message or ""
    whole = text if free_form else own_words
    if not lead.customer.phone:
        taken = {_digits(v) for v in (lead.vehicle.listing_id, lead.vehicle.stock_number) if v}
        for where, text in (("message", own_words), ("text", whole)):
            hit = next(
                (h for h in scanners.phones(text, ctx.region) if _digits(h.value) not in taken),
                None,
            )
            if hit:
                _offer(lead, "customer.phone", hit.value, SCANNER, f"{where}: {hit.context!r}")
                break
    if not lead.customer.email and own_words:
        for hit in scanners.emails(own_words):
            if not is_dealer_address(hit.value, ctx.dealer_addresses):
                _offer(lead, "customer.email", hit.value, SCANNER, f"message: {hit.context!r}")
                break
    if not lead.vehicle.vin and _names_a_vin(text):
        hit = next(iter(scanners.vins(text)), None)
        if hit:
            _offer(lead, "vehicle.vin", hit.value, SCANNER, f"text: {hit.context!r}")
    # a source parser may leave "(Nr. 4711)" in the model it took from a title (finalize
    # drops it there), so the model is scanned too
    model = lead.vehicle.model
    prose = "\n".join(filter(None, (subject, model, whole[: scanners.FIELD_SCAN_CHARS])))
    if not lead.vehicle.stock_number:
        hit = next(iter(scanners.stock_numbers(prose)), None)
        if hit:
            _offer(lead, "vehicle.stock_number", hit.value, SCANNER, f"text: {hit.context!r}")
    if not lead.vehicle.listing_id:
        hit = next(iter(scanners.listing_ids(f"{subject or ''}\n{text}")), None)
        if hit:
            _offer(lead, "vehicle.listing_id", hit.value, SCANNER, f"text: {hit.context!r}")
    if lead.vehicle.price is None:
        hit = next(iter(scanners.prices(prose)), None)
        if hit:
            _offer(lead, "vehicle.price", parse_price(hit.value), SCANNER, f"text: {hit.context!r}")


# country-code top-level domains whose numbering plan a national number may follow
_TLD_REGIONS = {
    "at": "AT",
    "be": "BE",
    "ch": "CH",
    "nl": "NL",
    "fr": "FR",
    "it": "IT",
    "es": "ES",
    "lu": "LU",
    "pl": "PL",
    "dk": "DK",
    "se": "SE",
    "cz": "CZ",
    "uk": "GB",
    "ie": "IE",
    "pt": "PT",
    "li": "LI",
    "de": "DE",
}


def _phone_country(lead: ParsedLead, view: MailView, ctx: ParseContext) -> None:
    """A national number ("0664 …", "06 …") in a mail from another country's portal or
    customer is that country's: the customer's address domain, then the sender's, decide
    before the dealer's own region."""
    phone = lead.customer.phone
    if not phone or phone.lstrip().startswith(("+", "00")):
        return
    regions: list[str] = []
    addresses = [lead.customer.email or ""] + [a for _, a in view.reply_to + view.from_addresses]
    for address in addresses:
        tld = address.rpartition(".")[2].lower()
        region = _TLD_REGIONS.get(tld)
        if region and region not in regions:
            regions.append(region)
    if not regions or regions[0] == ctx.region.upper():
        return
    for region in regions:
        number = _valid_in(phone, region)
        if number:
            if number != _e164(phone):
                lead.customer.phone_e164 = number
                lead.losers.setdefault("customer.phone", []).append(
                    Loser(SOURCE, f"read in {ctx.region}", str(_e164(phone)), f"a {region} mail")
                )
            return


def _valid_in(phone: str, region: str) -> str | None:
    import phonenumbers

    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- layer 4: the catalogue --------------------------------------------------------------


def _catalogue(lead: ParsedLead, pairs: list[reader.Pair], view: MailView, text: str) -> None:
    vehicle = lead.vehicle
    offer = next((p for p in pairs if p.key == "vehicle"), None)
    if offer is not None and not vehicle.make:
        _offer_line(lead, offer)
    _title_line(lead, text)
    if vehicle.make and vehicle.model:
        return
    places: list[tuple[str, str, str | None]] = []
    if offer is not None:
        places.append((GENERAL, _detail(offer), offer.value))
    places.append((SUBJECT, f"subject {view.subject!r}"[:100], view.subject))
    if vehicle.model:
        places.insert(0, (SOURCE, "the parser's model", f"{vehicle.make or ''} {vehicle.model}"))
    places.append((CATALOGUE, "message", lead.message))
    for reader_name, detail, text in places:
        found = catalogue.find_vehicle(text)
        if found is None:
            continue
        if vehicle.make and normalise_make(vehicle.make) != found.make:
            continue
        if _is_trade_in(lead, found):
            continue
        origin = CATALOGUE if reader_name == SOURCE else reader_name
        where = f"catalogue via {detail}" if origin != CATALOGUE else f"in the {detail}"
        _offer(lead, "vehicle.make", found.make, origin, f"{where} ({found.matched!r})")
        if found.model and not vehicle.model:
            _offer(lead, "vehicle.model", found.model, origin, f"{where} ({found.matched!r})")
        if vehicle.make and vehicle.model:
            return


def _title_line(lead: ParsedLead, text: str) -> None:
    """A title line in the body ("Renault Clio TCe 90 Evolution") completes a short model.

    Only the same car counts: the make must agree and the title must start with the
    model already read ("Clio" from the subject), so a trade-in or another offer
    never replaces it.
    """
    vehicle = lead.vehicle
    if vehicle.model and len(vehicle.model.split()) >= 3:
        return  # already a model with its trim
    text = text[:3000]
    prose = catalogue.find_vehicle(text)
    for title in catalogue.offer_lines(text) + ([prose] if prose else []):
        if _is_trade_in(lead, title) or not title.model:
            continue
        title = _cut_ids(title, vehicle)
        if vehicle.make and normalise_make(vehicle.make) != title.make:
            continue
        current = (vehicle.model or "").lower()
        if current and not title.model.lower().startswith(current):
            continue
        if len(title.model) <= len(current):
            return
        detail = f"title line {title.make!r} {title.model!r}"
        if vehicle.model:
            lead.losers.setdefault("vehicle.model", []).append(
                Loser(
                    lead.provenance.get("vehicle.model", Origin(SOURCE, "", "")).reader,
                    "shorter",
                    vehicle.model,
                    "a title line in the body names the full model",
                )
            )
            vehicle.model = None
        _offer(lead, "vehicle.make", title.make, CATALOGUE, detail)
        _offer(lead, "vehicle.model", title.model, CATALOGUE, detail)
        return


# definition-list and list items end a line of their own (html_to_text glues them)
_BLOCK_ENDS = re.compile(r"(?i)</(?:dd|dt|li|h[1-6])\s*>")
_AMOUNT = re.compile(r"\s\d{1,3}(?:[.,' ]\d{3})+(?:,\d{2})?\b.*$|\s(?:€|EUR|CHF)\b.*$")


def _cut_ids(title: catalogue.Vehicle, vehicle: VehicleData) -> catalogue.Vehicle:
    """A title from a table row keeps the columns after it: cut at the stock number or price."""
    model = _AMOUNT.sub("", title.model or "")
    for known in (vehicle.stock_number, vehicle.listing_id):
        if known and f" {known}" in f" {model}":
            model = model[: f" {model}".index(f" {known}")].strip()
    return catalogue.Vehicle(title.make, model.strip() or None, title.matched)


def _offer_line(lead: ParsedLead, offer: reader.Pair) -> None:
    """A labelled offer line naming a catalogue make: make + the rest of the line as model.

    A model without a make that names no known vehicle (a parser took the word
    "Angebot" from a subject) loses to it; the loss is recorded.
    """
    found = catalogue.find_vehicle(offer.value)
    if found is None or _is_trade_in(lead, found):
        return
    start = offer.value.find(found.matched)
    if start != 0:
        return  # the line does not start with the make: prose, left to the catalogue pass
    rest = offer.value[len(found.matched) :].strip(" -:,")
    rest = re.split(r"\s(?:€|EUR)\s?\d|\s\d[\d.,]*\s?(?:€|EUR)\b|,\s", rest)[0].strip()
    vehicle = lead.vehicle
    detail = f"{_detail(offer)}, catalogue make {found.matched!r}"
    known = catalogue.find_vehicle(f"{found.make} {vehicle.model}") if vehicle.model else None
    if vehicle.model and (known is None or known.model is None):
        if rest and found.model:
            lead.losers.setdefault("vehicle.model", []).append(
                Loser(SOURCE, lead.parser, vehicle.model, "names no known vehicle")
            )
            vehicle.model = None
    _offer(lead, "vehicle.make", found.make, GENERAL, detail)
    _offer(lead, "vehicle.model", rest or found.model, GENERAL, detail)


def _is_trade_in(lead: ParsedLead, found: catalogue.Vehicle) -> bool:
    """The customer's own car (named in the subject of a trade-in lead) is not the wanted one."""
    trade = lead.trade_in
    if trade is None:
        return False
    return normalise_make(trade.make) == found.make or bool(
        trade.model and found.model and trade.model.split()[0] == found.model.split()[0]
    )


def _kind(lead: ParsedLead) -> None:
    """A parser that found no message decided "inquiry" without the customer's words; with
    the message the general reader found, the kind is decided again the same way."""
    from .fields import detect_kind

    if lead.kind != "inquiry" or not lead.message:
        return
    origin = lead.provenance.get("message")
    if origin is not None and origin.reader == SOURCE:
        return
    kind = detect_kind(" ".join(filter(None, (lead.subject, lead.message))))
    if kind != "inquiry":
        lead.kind = kind
        lead.losers.setdefault("kind", []).append(
            Loser(SOURCE, lead.parser, "inquiry", "decided before the message was read")
        )


# --- extras, conflicts, lead status ----------------------------------------------------------


def _capture_extras(lead: ParsedLead, pairs: list[reader.Pair]) -> None:
    for pair in pairs:
        if pair.key in ("plate", "contact_time", "contact_way", "appointment"):
            key = f"{pair.section}.{pair.key}" if pair.section != "main" else pair.key
            lead.extras.setdefault(key, pair.value)


def _settle_lead(lead: ParsedLead) -> None:
    """Contact found by a lower layer makes a lead; disagreements lower the confidence."""
    if not lead.is_lead and lead.customer.has_contact():
        lead.is_lead = True
        lead.warnings = [w for w in lead.warnings if not any(n in w for n in _NO_CONTACT)]
        lead.confidence = max(lead.confidence, 0.45)
    for path in _IDENTIFYING:
        origin = lead.provenance.get(path)
        disagreeing = [loser for loser in lead.losers.get(path, []) if loser.reader == GENERAL]
        if origin and origin.reader == SOURCE and disagreeing:
            lead.confidence = max(0.0, lead.confidence - CONFLICT_PENALTY)
            lead.warnings.append(
                f"please check {path.split('.')[1]}: the parser read {origin.value!r}, "
                f"the label {disagreeing[0].detail} says {disagreeing[0].value!r}"
            )
