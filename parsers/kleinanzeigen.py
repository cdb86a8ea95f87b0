"""Kleinanzeigen (formerly eBay Kleinanzeigen) inquiries (FORMATS.md section 3).

Same family as mobile.de: the inquiry arrives from a per-conversation relay
(``interessent-<token>@mail.(ebay-)kleinanzeigen.de``), often HTML-only, with
the ad title quoted in the subject, an ``Anzeigennummer`` and the customer's
text after ``Nachricht von: <name>``.  The display name may carry the suffix
"… über eBay Kleinanzeigen", which is not part of the customer's name.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .marketplace import (
    body_text,
    choose_email,
    customer_text,
    display_name,
    label_value,
    link_markup,
    mileage_from,
    person,
    platform_lead,
    price_from,
    split_vehicle,
    subject_core,
    trim_title,
    until,
)
from .message import MailView, clean_line
from .model import ParsedLead, VehicleData
from .signals import domain_matches, sent_by

NAME = "kleinanzeigen"
SOURCE = "kleinanzeigen"
DOMAINS = ("kleinanzeigen.de", "ebay-kleinanzeigen.de")
RELAY_DOMAINS = ("mail.kleinanzeigen.de", "mail.ebay-kleinanzeigen.de")
NAME_SUFFIXES = ("über eBay Kleinanzeigen", "über Kleinanzeigen", "via Kleinanzeigen")

_MARKERS = ("Nachricht von", "Anzeigennummer")
_STOPS = (
    "bitte antworte",
    "beantworte",
    "antworten-button",
    "antworte einfach",
    "bitte nutze die antworten",
    "bitte nutze den antworten",
    "bitte nutzen sie die antworten",
    "schütze dich vor betrug",
    "schützen sie sich vor betrug",
    "dein kleinanzeigen-team",
    "ihr kleinanzeigen-team",
    "ihr ebay kleinanzeigen-team",
    "dein ebay kleinanzeigen-team",
    "anzeigennummer:",
    "zur anzeige",
    "anzeige ansehen",
)
_AD_LINK = re.compile(r"kleinanzeigen\.de/s-anzeige/[^/\s\"'<>]{1,200}/(\d{8,11})-")
_QUOTED_TITLE = re.compile(r"[\"„“»](.+?)[\"“”«]")
_FROM_LINE = re.compile(r"^\s*nachricht von\s*:?\s*(.*)$", re.IGNORECASE)


def matches(view: MailView) -> bool:
    """From/Sender at (ebay-)kleinanzeigen.de or a subdomain (a real suffix match)."""
    return sent_by(view, DOMAINS)


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    text = body_text(view, _MARKERS)
    subject = subject_core(view.subject)
    relay = any(domain_matches(a, RELAY_DOMAINS) for _, a in view.from_addresses)
    written_name, message = _sender_and_message(text)
    if written_name is None:
        # Follow-ups in a relay thread carry no label: the new text comes first.
        message = customer_text(until(text, _STOPS))
    name = display_name(view, NAME_SUFFIXES) if relay else None
    customer = person(name or written_name)
    customer.email = choose_email(
        label_value(text, ("E-Mail", "E-Mail-Adresse")),
        view,
        ctx,
        DOMAINS,
        RELAY_DOMAINS,
        seller_prefixes=("anbieter-",),
    )
    customer.phone = label_value(text, ("Telefonnummer", "Telefon", "Tel.", "Handynummer"))

    title = _ad_title(subject) or label_value(text, ("Anzeige", "Anzeigentitel"))
    make, model = split_vehicle(trim_title(title) if title else None)
    vehicle = VehicleData(
        make=make,
        model=model,
        listing_id=_listing_id(text, link_markup(view)),
        price=price_from(label_value(text, ("Preis", "Verkaufspreis"))),
        mileage=mileage_from(label_value(text, ("Kilometerstand",))),
        first_registration=label_value(text, ("Erstzulassung",), max_len=32),
    )
    inquiry = relay or written_name is not None
    return platform_lead(
        parser=NAME,
        source=SOURCE,
        label="kleinanzeigen",
        view=view,
        subject=subject,
        customer=customer,
        vehicle=vehicle,
        message=message,
        inquiry=inquiry,
    )


def _sender_and_message(text: str) -> tuple[str | None, str | None]:
    """Name after ``Nachricht von:`` (same or next line) and the text that follows it."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        found = _FROM_LINE.match(line)
        if not found:
            continue
        name = found.group(1).strip()
        rest = lines[index + 1 :]
        if not name:
            while rest and not rest[0].strip():
                rest = rest[1:]
            name = rest[0].strip() if rest else ""
            rest = rest[1:]
        body = until("\n".join(rest), _STOPS)
        return clean_line(name.rstrip(":"), 120) or "", customer_text(body)
    return None, None


def _ad_title(subject: str) -> str | None:
    if "anzeige" not in subject.lower():
        return None
    quoted = _QUOTED_TITLE.search(subject)
    return quoted.group(1) if quoted else None


def _listing_id(text: str, html: str | None) -> str | None:
    """``Anzeigennummer`` (8+ digits) or the number in an ``/s-anzeige/<slug>/<id>-…`` link."""
    value = label_value(text, ("Anzeigennummer", "Anzeigen-Nr.", "Anzeige-ID"), max_len=64)
    if value:
        found = re.match(r"(\d{8,11})\b", value.replace(" ", ""))
        if found:
            return found.group(1)
    for haystack in (text, html or ""):
        link = _AD_LINK.search(haystack)
        if link:
            return link.group(1)
    return None
