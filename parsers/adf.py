"""ADF/XML 1.0 leads: the document in the text body, HTML-escaped in the HTML body, or attached.

ADF is the one lead format with a published structure, so this parser reads
the structure instead of guessing from labels: the customer comes only from
``prospect/customer/contact`` (never the vendor, which is the dealer itself,
nor the provider, which is the portal), the vehicle is the first one the
customer wants to buy, a ``trade-in`` vehicle goes to ``trade_in`` and a
finance block makes the lead a financing lead without ever lending its down
payment or monthly rate to the price.  The XML is read by :mod:`.adf_xml`,
which refuses entity declarations instead of expanding them.
"""

from __future__ import annotations

import re
from email.message import Message

from .adf_xml import (
    MAX_DOCUMENT_CHARS,
    AdfContact,
    AdfError,
    AdfProspect,
    AdfVehicle,
    contains_adf,
    decode_xml_bytes,
    extract_document,
    parse_document,
    read_prospect,
)
from .context import DEFAULT_CONTEXT, ParseContext
from .fields import detect_kind, is_system_address
from .htmltext import html_text
from .message import MailView
from .model import CustomerData, ParsedLead, VehicleData
from .normalize import parse_price, split_name

NAME = "adf"

XML_TYPES = ("application/xml", "text/xml", "application/adf+xml", "application/x-adf")
XML_SUFFIXES = (".xml", ".adf")
MAX_ATTACHMENTS_READ = 10
TRADE_INTERESTS = ("trade-in", "tradein", "trade", "sell")
SALE_PRICE_TYPES = ("offer", "quote", "asking", "msrp", "invoice")
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_TEST_NAMES = {"test", "testing", "tester"}


def matches(view: MailView) -> bool:
    """An ``<adf`` root in the text or HTML body, or in an XML/ADF attachment."""
    if contains_adf(view.text) or contains_adf(view.html):
        return True
    return any(contains_adf(text) for _, text in _xml_attachments(view.message))


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    lead = ParsedLead(parser=NAME, source="adf", subject=view.subject, warnings=list(view.warnings))
    document = find_document(view)
    if document is None:
        lead.warnings.append("no ADF document found in the mail")
        return lead
    try:
        root, notes = parse_document(document)
        prospect = read_prospect(root)
    except AdfError as exc:
        lead.warnings.append(str(exc))
        return lead
    lead.warnings.extend(notes)
    _fill(lead, prospect, view, ctx)
    return lead


def find_document(view: MailView) -> str | None:
    """The ADF document from the text body, the HTML body, or the first ADF attachment."""
    if contains_adf(view.text):
        found = extract_document(view.text)
        if found:
            return found
    if view.html and contains_adf(view.html):
        raw_root = re.search(r"<adf\b", view.html, re.IGNORECASE)
        markup = view.html[:MAX_DOCUMENT_CHARS]
        found = extract_document(markup if raw_root else html_text(markup))
        if found:
            return found
    for _, text in _xml_attachments(view.message):
        if contains_adf(text):
            return extract_document(text)
    return None


def _xml_attachments(message: Message) -> list[tuple[str, str]]:
    """``(filename, text)`` of parts that are XML or ``.adf`` files (a bounded number)."""
    found: list[tuple[str, str]] = []
    for part in message.walk():
        if part.is_multipart() or len(found) >= MAX_ATTACHMENTS_READ:
            continue
        try:
            filename = (part.get_filename() or "").strip().lower()
        except Exception:  # noqa: BLE001 - a broken filename parameter is just no filename
            filename = ""
        ctype = part.get_content_type()
        if ctype not in XML_TYPES and not filename.endswith(XML_SUFFIXES):
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - undecodable attachment: no ADF in it
            payload = None
        if isinstance(payload, bytes):
            found.append((filename, decode_xml_bytes(payload, part.get_content_charset())))
    return found


def _fill(lead: ParsedLead, prospect: AdfProspect, view: MailView, ctx: ParseContext) -> None:
    if prospect.other_prospects:
        lead.warnings.append(
            f"ADF document holds {prospect.other_prospects} further prospect(s); "
            "only the first is parsed"
        )
    excluded = set(ctx.dealer_addresses)
    for contact in (prospect.vendor_contact, prospect.provider_contact):
        if contact:
            excluded.update(e.lower() for e in contact.emails)
    lead.customer = _customer(prospect.customer, excluded, view, lead.warnings)
    wanted = [v for v in prospect.vehicles if v.interest not in TRADE_INTERESTS]
    trades = [v for v in prospect.vehicles if v.interest in TRADE_INTERESTS]
    main = next((v for v in wanted if v.interest == "buy"), wanted[0] if wanted else None)
    if main is not None:
        lead.vehicle = _vehicle(main, lead.warnings)
        rest = [v for v in wanted if v is not main]
        if rest:
            lead.warnings.append(
                f"ADF lists {len(rest)} further vehicle(s) the customer is interested in "
                f"({'; '.join(_describe(v) for v in rest)}); only the first is the lead's vehicle"
            )
    if trades:
        lead.trade_in = _vehicle(trades[0], lead.warnings, trade_in=True)
        if len(trades) > 1:
            lead.warnings.append(
                f"ADF lists {len(trades)} trade-in vehicles; only the first is kept"
            )
    lead.message = prospect.customer_comments
    lead.kind = _kind(main, trades, prospect)
    if _looks_like_test(lead.customer):
        lead.warnings.append("looks like a test lead (test name or test@test.com address)")
    found = sum(
        1
        for value in (
            lead.customer.name,
            lead.customer.email,
            lead.customer.phone,
            lead.vehicle.model or lead.vehicle.make,
            lead.message,
        )
        if value
    )
    lead.is_lead = lead.customer.has_contact()
    if lead.is_lead:
        lead.confidence = min(0.95, 0.5 + 0.09 * found)
    else:
        lead.confidence = 0.1
        lead.warnings.append("ADF customer contact has neither e-mail address nor phone number")


def _customer(
    contact: AdfContact, excluded: set[str], view: MailView, warnings: list[str]
) -> CustomerData:
    customer = CustomerData()
    if contact.business and contact.full_name:
        customer.name = contact.full_name
    elif contact.first_name or contact.last_name:
        full = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        salutation, title, _, _ = split_name(full)
        first = _drop_leading(contact.first_name, salutation, title)
        customer.salutation, customer.title = salutation, title
        customer.first_name, customer.last_name = first, contact.last_name
        customer.name = " ".join(p for p in (first, contact.last_name) if p) or None
    elif contact.full_name:
        salutation, title, first, last = split_name(contact.full_name)
        customer.salutation, customer.title = salutation, title
        customer.first_name, customer.last_name = first, last
        customer.name = " ".join(p for p in (first, last) if p) or contact.full_name
    for written in contact.emails:
        found = _EMAIL.search(written[:320])  # an address is short; bounded work
        if not found:
            warnings.append(f"ADF customer e-mail {written[:80]!r} is not an address; ignored")
            continue
        candidate = found.group(0)
        if candidate.lower() in excluded:
            warnings.append(
                "ADF customer e-mail is the dealer's, vendor's or provider's address; ignored"
            )
            continue
        customer.email = candidate
        break
    if customer.email is None:
        senders = {a.lower() for _, a in view.from_addresses}
        for _, address in view.reply_to:
            lowered = address.lower()
            if lowered not in excluded | senders and not is_system_address(address):
                customer.email = address
                break
    usable = [n for t, n in contact.phones if t not in ("fax", "pager")]
    customer.phone = usable[0] if usable else None
    customer.street, customer.postcode = contact.street, contact.postcode
    customer.city, customer.country = contact.city, contact.country
    return customer


def _drop_leading(first: str | None, *words: str | None) -> str | None:
    """``first`` without a salutation or title the generator put in front of it."""
    if not first:
        return None
    remaining = first.split()
    for word in " ".join(w for w in words if w).split():
        if remaining and remaining[0].lower() == word.lower():
            remaining.pop(0)
    return " ".join(remaining) or None


def _vehicle(source: AdfVehicle, warnings: list[str], trade_in: bool = False) -> VehicleData:
    model = " ".join(p for p in (source.model, source.trim) if p) or None
    vehicle = VehicleData(
        make=source.make,
        model=model,
        vin=source.vin,
        stock_number=None if trade_in else source.stock,
        listing_id=None if trade_in or not source.ids else source.ids[0],
    )
    vehicle.price = _price(source, trade_in)
    if source.odometer:
        digits = re.sub(r"[^\d]", "", source.odometer.split(",")[0])
        if digits:
            mileage = int(digits)
            if source.odometer_units in ("mi", "miles"):
                mileage = round(mileage * 1.609344)
                warnings.append("ADF odometer given in miles; converted to km")
            vehicle.mileage = mileage
    return vehicle


def _price(source: AdfVehicle, trade_in: bool) -> float | None:
    """The sale price by type preference; for a trade-in also its appraisal.

    Finance amounts are never read here: a down payment or a monthly rate is
    not the vehicle's price.
    """
    order = (("appraisal",) + SALE_PRICE_TYPES) if trade_in else SALE_PRICE_TYPES
    for wanted in order:
        for kind, amount in source.prices:
            if kind == wanted:
                price = parse_price(amount)
                if price is not None:
                    return price
    return None


def _kind(main: AdfVehicle | None, trades: list[AdfVehicle], prospect: AdfProspect) -> str:
    if main is not None and main.interest in ("test-drive", "testdrive"):
        return "test_drive"
    finance = (main.finance if main else None) or prospect.finance
    if (main is not None and main.interest == "lease") or (
        finance is not None and finance.method not in ("cash",)
    ):
        return "financing"
    if trades and main is None:
        return "trade_in"
    return detect_kind(prospect.customer_comments) if prospect.customer_comments else "inquiry"


def _describe(vehicle: AdfVehicle) -> str:
    return " ".join(p for p in (vehicle.year, vehicle.make, vehicle.model) if p) or "unnamed"


def _looks_like_test(customer: CustomerData) -> bool:
    email = (customer.email or "").lower()
    names = {(customer.first_name or "").lower(), (customer.last_name or "").lower()}
    return email.endswith("@test.com") or bool(names & _TEST_NAMES)
