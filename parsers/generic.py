"""The generic fallback parser: labelled fields (``Name: …``) and free text.

Works for any mail that lists its data as ``label: value`` lines or table rows,
in German, English, Dutch or French.  It is the last entry of the registry, so
a source nobody wrote a parser for still yields a usable lead.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .fields import choose_customer_email, detect_kind, labelled_fields
from .message import MailView, clean_line
from .model import CustomerData, ParsedLead, VehicleData
from .normalize import parse_price, split_name

NAME = "generic"


def matches(view: MailView) -> bool:
    """The fallback matches every mail."""
    return True


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    fields = labelled_fields(view.text)
    customer = CustomerData()
    full_name = fields.get("name") or _join(fields.get("first_name"), fields.get("last_name"))
    if full_name:
        salutation, title, first, last = split_name(full_name)
        customer.salutation = fields.get("salutation") or salutation
        customer.title = title
        customer.first_name = fields.get("first_name") or first
        customer.last_name = fields.get("last_name") or last
        customer.name = clean_line(" ".join(p for p in (first, last) if p)) or full_name
    elif view.reply_to or view.from_addresses:
        display = (view.reply_to or view.from_addresses)[0][0]
        if display:
            _, customer.title, customer.first_name, customer.last_name = split_name(display)
            customer.name = display
    customer.email = choose_customer_email(fields.get("email"), view, ctx.dealer_addresses)
    customer.phone = fields.get("phone")
    customer.street = fields.get("street")
    customer.postcode = fields.get("postcode")
    customer.city = fields.get("city")
    customer.country = fields.get("country")
    if customer.postcode is None and fields.get("postcode_city"):
        match = re.match(r"(\d{4,5})\s+(.+)", fields["postcode_city"])
        if match:
            customer.postcode, customer.city = match.group(1), match.group(2)

    vehicle = VehicleData(
        make=fields.get("make"),
        model=fields.get("model"),
        vin=fields.get("vin"),
        listing_id=fields.get("listing_id"),
        stock_number=fields.get("stock_number"),
        price=parse_price(fields.get("price")),
    )
    message = fields.get("message") or _free_text(view.text)
    lead = ParsedLead(
        parser=NAME,
        source="unknown",
        kind=detect_kind(" ".join(filter(None, (view.subject, view.text[:5000])))),
        customer=customer,
        vehicle=vehicle,
        message=message,
        subject=view.subject,
        warnings=list(view.warnings),
    )
    found = sum(
        1 for v in (customer.name, customer.email, customer.phone, message, vehicle.model) if v
    )
    lead.confidence = round(0.2 + 0.12 * found, 2) if customer.has_contact() else 0.1
    lead.is_lead = customer.has_contact()
    if not lead.is_lead:
        lead.warnings.append("no customer e-mail address or phone number found")
    return lead


def _join(*parts: str | None) -> str | None:
    joined = " ".join(p for p in parts if p)
    return joined or None


def _free_text(text: str) -> str | None:
    """The body without signature and quoted lines: the customer's own words."""
    lines = []
    for line in text.splitlines():
        if line.strip() == "--" or line.startswith("-- "):
            break
        if line.lstrip().startswith(">"):
            continue
        lines.append(line.rstrip())
    body = "\n".join(lines).strip()
    return body[:20_000] or None
