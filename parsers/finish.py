"""The last step after every parser: one place that makes any ParsedLead clean.

Each source parser extracts what it can; ``finalize`` then guarantees what the
contract promises whatever the parser did: single-line fields without control
characters, a plain-text message without markup, a canonical make, an E.164
phone number, a valid VIN, a known source and kind, a confidence in 0..1.
"""

from __future__ import annotations

import re
from dataclasses import fields

from .context import ParseContext
from .fields import is_dealer_address
from .message import MAX_TEXT_CHARS, clean_line, clean_text, html_to_text
from .model import KINDS, CustomerData, ParsedLead, VehicleData, is_valid_source
from .normalize import clean_vin, normalise_make, phone_e164
from .scanners import is_plate

_MARKUP_HINTS = ("<br", "<p", "<div", "<td", "<span", "<script", "<style", "<html", "<a ", "</")


def finalize(lead: ParsedLead, ctx: ParseContext) -> ParsedLead:
    """Clean and complete ``lead`` in place and return it."""
    _clean_customer(lead.customer, ctx)
    _clean_vehicle(lead.vehicle)
    if lead.vehicle.stock_number and is_plate(lead.vehicle.stock_number):
        # a licence plate under a "Referenz" label identifies the car, but is no stock number
        lead.extras.setdefault("plate", lead.vehicle.stock_number)
        lead.vehicle.stock_number = None
    if lead.trade_in is not None:
        _clean_vehicle(lead.trade_in)
        if lead.trade_in.is_empty():
            lead.trade_in = None
    lead.message = _clean_message(lead.message)
    lead.subject = clean_line(lead.subject)
    if not is_valid_source(lead.source):
        lead.warnings.append(f"unknown source {lead.source!r} reported as unknown")
        lead.source = "unknown"
    if lead.kind not in KINDS:
        lead.warnings.append(f"unknown kind {lead.kind!r} reported as other")
        lead.kind = "other"
    lead.confidence = min(1.0, max(0.0, float(lead.confidence or 0.0)))
    lead.warnings = [clean_line(w, 500) or "" for w in lead.warnings if w]
    lead.non_lead_reason = clean_line(lead.non_lead_reason, 500)
    return lead


_TAG = re.compile(r"<[^<>]{1,200}>")


def _field(value: str | None) -> str | None:
    """One line, no control characters, no leftover markup (``Eve <b>Bold</b>``)."""
    if value is None:
        return None
    return clean_line(_TAG.sub(" ", value) if "<" in value else value, 255)


def _clean_customer(customer: CustomerData, ctx: ParseContext) -> None:
    for item in fields(customer):
        value = getattr(customer, item.name)
        if isinstance(value, str) or value is None:
            setattr(customer, item.name, _field(value))
    if customer.email:
        local, _, domain = customer.email.strip("<>").rpartition("@")
        address = f"{local}@{domain.lower()}" if local and "." in domain else None
        if address and is_dealer_address(address, ctx.dealer_addresses):
            address = None  # the dealer's own mailbox or domain is never the customer
        customer.email = address
    if customer.phone and not customer.phone_e164:
        customer.phone_e164 = phone_e164(customer.phone, ctx.region)
    if (
        customer.last_name
        and not customer.first_name
        and not customer.salutation
        and not customer.title
        and " " not in customer.last_name
        and customer.name in (None, customer.last_name)
    ):
        # one word and no "Herr"/"Frau"/"Dr." before it: a marketplace user's given name
        # ("Paula"); with a salutation it is the surname ("Herr Müller")
        customer.first_name, customer.last_name = customer.last_name, None
    if not customer.name and (customer.first_name or customer.last_name):
        customer.name = clean_line(f"{customer.first_name or ''} {customer.last_name or ''}")


def _clean_vehicle(vehicle: VehicleData) -> None:
    for item in fields(vehicle):
        value = getattr(vehicle, item.name)
        if isinstance(value, str):
            setattr(vehicle, item.name, _field(value))
    vehicle.make = normalise_make(vehicle.make)
    vehicle.model = _tidy_model(vehicle.make, vehicle.model)
    vehicle.vin = clean_vin(vehicle.vin)
    if vehicle.price is not None and not 0 < vehicle.price < 100_000_000:
        vehicle.price = None
    if vehicle.mileage is not None and not 0 <= vehicle.mileage < 10_000_000:
        vehicle.mileage = None


_MODEL_STOCK = re.compile(
    r"\s*[(\[]\s*(?:nr|no|ref|referenz|kom(?:m)?-?nr|bestands-?nr|fzg-?nr|stock)\.?\s*[:#]?\s*"
    r"[A-Za-z0-9/-]{1,20}\s*[)\]]\s*$",
    re.IGNORECASE,
)


def _tidy_model(make: str | None, model: str | None) -> str | None:
    """A model without its make in front ("Hyundai IONIQ 5" -> "IONIQ 5") and without a
    trailing stock reference ("Arona 1.0 TSI (Nr. SA-1180)"): the make has its own field,
    the dealer's number too."""
    if not model:
        return model
    model = _MODEL_STOCK.sub("", model).strip(" ,;-") or model
    if make:
        words = model.split()
        for size in (3, 2, 1):
            if len(words) > size and normalise_make(" ".join(words[:size])) == make:
                model = " ".join(words[size:])
                break
    return model or None


def _clean_message(message: str | None) -> str | None:
    if not message:
        return None
    text = message
    lowered = text.lower()  # once, not once per hint: messages run to 200,000 characters
    if any(hint in lowered for hint in _MARKUP_HINTS):
        text = html_to_text(text)
    text = clean_text(text).strip()
    return text[:MAX_TEXT_CHARS] or None
