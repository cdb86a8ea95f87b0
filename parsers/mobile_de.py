"""mobile.de dealer inquiries (FORMATS.md section 2).

Two sender conventions coexist: a system address (``noreply@mobile.de``) with
the customer in ``Reply-To``, and the anonymising relay
(``buyer-<token>@kontakt.mobile.de``, older ``…@mail.mobile.de``) whose display
name is the customer's and whose address forwards to them.  Templates come in
Sie- and du-form; the customer's text follows ``Nachricht:`` and ends where
the platform's footer starts.  Only the 9-digit ad id is a listing id — lead
numbers, phone numbers, plates and the dealer's own "Interne Nr." are not.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .marketplace import (
    body_text,
    choose_email,
    customer_text,
    decode_words,
    display_name,
    label_value,
    link_markup,
    mileage_from,
    person,
    platform_lead,
    price_from,
    section,
    split_vehicle,
    subject_core,
    trim_title,
    until,
)
from .message import MailView
from .model import ParsedLead, VehicleData
from .signals import domain_matches, sent_by

NAME = "mobile_de"
SOURCE = "mobile.de"
DOMAINS = ("mobile.de",)
RELAY_DOMAINS = ("kontakt.mobile.de", "mail.mobile.de")

_MARKERS = ("Nachricht:", "Inseratsnummer", "Inserat-ID", "Interessent")
# Where the customer's words end: footer and follow-up blocks, both forms.
_STOPS = (
    "Nutze bitte die Antwort-Funktion",
    "Bitte nutze die Antwort-Funktion",
    "Bitte nutzen Sie die Antwort-Funktion",
    "Nutzen Sie bitte die Antwort-Funktion",
    "Bitte beachte:",
    "Bitte beachten Sie:",
    "Sicherheit bei mobile.de",
    "Diese E-Mail ist ein Service der mobile.de",
    "Hinweis: Diese Nachricht",
    "Ihr mobile.de-Team",
    "Ihr mobile.de Team",
    "Dein mobile.de-Team",
    "Dein mobile.de Team",
    "Inserat ansehen",
    "Zum Inserat",
)
_AD_ID_LABELS = (
    "Inseratsnummer",
    "Inseratnummer",
    "Inserat-ID",
    "Inserats-ID",
    "Inserat-Nr.",
    "Inserat-Nr",
    "Anzeigen-ID",
)
_AD_LINK = re.compile(r"mobile\.de/[^\s\"'<>]{0,200}?[?&](?:amp;)?id=(\d{7,10})\b", re.I)
_SUBJECT_VEHICLE = re.compile(
    r"(?:inserat|fahrzeug|anzeige)\s*(?:[:\-–]\s*[\"„“]?|\s+[\"„“])(.+?)[\"“”]?\s*$", re.I
)


def matches(view: MailView) -> bool:
    """From/Sender at mobile.de or one of its subdomains (a real suffix match)."""
    return sent_by(view, DOMAINS)


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    text = body_text(view, _MARKERS)
    subject = subject_core(view.subject)
    relay = any(domain_matches(a, RELAY_DOMAINS) for _, a in view.from_addresses)

    name = label_value(text, ("Name", "Interessent", "Ihr Name", "Dein Name"))
    if not name:
        name = next((decode_words(d) for d, a in view.reply_to if d and "@" not in d), None)
    if not name and relay:
        name = display_name(view, ("über mobile.de", "via mobile.de", "(mobile.de)"))
    customer = person(name, label_value(text, ("Anrede",)))
    customer.email = choose_email(
        label_value(text, ("E-Mail", "E-Mail-Adresse", "Email")),
        view,
        ctx,
        DOMAINS,
        RELAY_DOMAINS,
        seller_prefixes=("seller-",),
    )
    customer.phone = label_value(text, ("Telefon", "Telefonnummer", "Tel.", "Mobil", "Handy"))

    vehicle = _vehicle(text, link_markup(view), subject)
    message = _message(text)
    inquiry = relay or "nachricht:" in text.lower() or "anfrage" in subject.lower()
    return platform_lead(
        parser=NAME,
        source=SOURCE,
        label="mobile.de",
        view=view,
        subject=subject,
        customer=customer,
        vehicle=vehicle,
        message=message,
        inquiry=inquiry,
    )


def _vehicle(text: str, html: str | None, subject: str) -> VehicleData:
    title = label_value(text, ("Fahrzeug", "Inserat", "Ihr Inserat", "Dein Inserat"))
    if not title:
        found = _SUBJECT_VEHICLE.search(subject)
        title = found.group(1) if found else None
    make, model = split_vehicle(trim_title(title) if title else None)
    return VehicleData(
        make=label_value(text, ("Marke", "Hersteller")) or make,
        model=label_value(text, ("Modell",)) or model,
        vin=label_value(text, ("FIN", "Fahrgestellnummer", "VIN")),
        listing_id=listing_id(text, html),
        stock_number=label_value(
            text,
            (
                "Interne Nr.",
                "Interne Nr",
                "Interne Nummer",
                "Ihre interne Nummer",
                "Deine interne Nummer",
                "Interne Fahrzeugnummer",
                "Bestandsnummer",
            ),
            max_len=64,
        ),
        price=price_from(
            label_value(text, ("Preis", "Verkaufspreis", "Fahrzeugpreis", "Angebotspreis"))
        ),
        mileage=mileage_from(label_value(text, ("Kilometerstand", "Laufleistung"))),
        first_registration=label_value(text, ("Erstzulassung", "EZ"), max_len=32),
    )


def listing_id(text: str, html: str | None) -> str | None:
    """The mobile.de ad id: a labelled ``Inseratsnummer`` or the ``?id=`` of an ad link.

    Other numbers in the mail (an inquiry number, the dealer's stock number, a
    phone number) are never taken: only these two places name the ad.
    """
    value = label_value(text, _AD_ID_LABELS, max_len=64)
    if value:
        found = re.match(r"(\d{7,10})\b", value.replace(" ", ""))
        if found:
            return found.group(1)
    for haystack in (text, html or ""):
        link = _AD_LINK.search(haystack)
        if link:
            return link.group(1)
    return None


def _message(text: str) -> str | None:
    body = section(text, ("Nachricht:",), _STOPS)
    if not body.strip():
        # Follow-ups in a relay thread carry no label: the new text comes first.
        body = until(text, _STOPS)
    return customer_text(body)
