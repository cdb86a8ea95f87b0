"""AutoScout24 inquiries in Dutch, German (DE/AT) and Belgian French (FORMATS.md section 4).

The customer is in ``Reply-To`` or, failing that, a ``mailto:`` link after
``Antwoorden op:`` (``Antworten an:``, ``Répondre à:``).  The listing id is the
UUID that ends the offer URL (``/aanbod/<slug>-<uuid>``), never the licence
plate (``Kenteken``).  The same sender domains also send call-tracking and
housekeeping notices: a missed call is a phone-only lead, an answered call or
a "your sales chances" digest is a non-lead with a reason.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .fields import detect_kind
from .marketplace import (
    UUID,
    body_text,
    choose_email,
    confidence,
    customer_text,
    decode_words,
    first_line_index,
    label_value,
    link_markup,
    mailto_after,
    mileage_from,
    person,
    price_from,
    section,
    split_vehicle,
    subject_core,
    trim_title,
)
from .message import MailView
from .model import ParsedLead, VehicleData
from .signals import domain_matches, sent_by

NAME = "autoscout24"
SOURCE = "autoscout24"
DOMAINS = tuple(
    f"autoscout24.{tld}"
    for tld in ("com", "de", "at", "ch", "nl", "be", "fr", "it", "es", "lu", "pl", "net")
)

_MARKERS = (
    "Bericht van de koper",
    "Nieuwe aanvraag",
    "Antwoorden op",
    "Nachricht des",
    "Neue Anfrage",
    "Message de l'acheteur",
    "Nouvelle demande",
    "Telefoonnummer",
)
_MESSAGE_STARTS = (
    "Bericht van de koper",
    "Nachricht des Interessenten",
    "Nachricht des Käufers",
    "Message de l'acheteur",
    "Message de l’acheteur",
)
_TRADE_IN_STARTS = (
    "Fahrzeug zur Inzahlungnahme",
    "Inzahlungnahme-Fahrzeug",
    "Ihr Fahrzeug zur Inzahlungnahme",
    "Inruilaanvraag",
    "Inruilauto",
    "Inzahlungnahme",
    "Demande de reprise",
    "Véhicule à reprendre",
)
_STOPS = (
    "Bekijk advertentie",
    "Angebot ansehen",
    "Inserat ansehen",
    "Fahrzeug ansehen",
    "Voir l'annonce",
    "Voir l’annonce",
    "Antwoorden op",
    "Antworten an",
    "Répondre à",
    "Advertentienr",
    "Angebotsnummer",
    "N° d'annonce",
    "Met vriendelijke groet",
    "Mit freundlichen Grüßen",
    "Freundliche Grüße",
    "Cordialement",
    "Je AutoScout24",
    "Uw AutoScout24",
    "Ihr AutoScout24",
    "Dein AutoScout24",
    "Votre équipe AutoScout24",
    "L'équipe AutoScout24",
    "Kenteken:",
    "Kennzeichen:",
    "Immatriculation:",
    "Prijs:",
    "Vraagprijs:",
    "Preis:",
    "Prix:",
) + _TRADE_IN_STARTS
_MISSED_CALL = ("gemiste oproep", "verpasster anruf", "entgangener anruf", "appel manqué")
_NOTICES = (
    "aangenomen oproep",
    "angenommener anruf",
    "appel pris",
    "gesprek gevoerd",
    "je hebt een reactie ontvangen",
    "verkoopkansen",
    "advertentiekwaliteit",
    "verkaufschancen",
    "anzeigenqualität",
    "inseratsqualität",
    "chances de vente",
    "qualité de l'annonce",
)
_HEADLINE = re.compile(
    r"(?:nieuwe aanvraag van|neue anfrage von|nouvelle demande de)\s+(.+?)\s+"
    r"(?:voor|für|zu|zum|pour)\s+(?:(?:uw|ihre[mn]?|ihr|votre|deine[mn]?|dein)\s+)?(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SUBJECT_VEHICLE = re.compile(
    r"(?:interesse in|voor uw|zu ihrem|für ihr(?:en)?|pour votre|pour)\s+(.+)$", re.I
)
_OFFER_URL = re.compile(
    r"autoscout24\.[a-z]{2,3}/(?:[a-z]{2}/)?(?:offers|aanbod|angebote|annonces|offres|offerte)/"
    r"[^\s\"'<>]{0,200}?(" + UUID.pattern + r")",
    re.IGNORECASE,
)
_SUBJECT_PRICE = re.compile(r"(?:€|EUR)\s?\d[\d.,]*(?:,-)?|\d[\d.,]*\s?(?:€|EUR)")


def matches(view: MailView) -> bool:
    """From/Sender at an ``autoscout24.<tld>`` domain (``notautoscout24.be`` is not)."""
    return sent_by(view, DOMAINS)


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    text = body_text(view, _MARKERS)
    subject = subject_core(view.subject)
    lowered = f"{subject}\n{text[:3000]}".lower()
    lead = ParsedLead(parser=NAME, source=SOURCE, subject=view.subject)
    lead.warnings = list(view.warnings)
    notice = next((n for n in _NOTICES if n in lowered), None)
    buyer_text = first_line_index(text, _MESSAGE_STARTS) is not None
    if notice and not buyer_text and not any(m in lowered for m in _MISSED_CALL):
        lead.non_lead_reason = f"autoscout24 notice: {notice}"
        return lead

    trade_at = first_line_index(text, _TRADE_IN_STARTS)
    main = text if trade_at is None else text[:trade_at]
    headline = _HEADLINE.search(main)
    customer = person(
        label_value(main, ("Naam", "Name", "Nom", "Nom et prénom"))
        or (headline.group(1) if headline else None)
        or _reply_to_name(view),
        label_value(main, ("Aanhef", "Anrede", "Civilité")),
    )
    labelled_email = label_value(main, ("E-mail", "E-Mail", "E-mailadres", "Adresse e-mail"))
    if not labelled_email or "@" not in labelled_email:
        labelled_email = mailto_after(
            link_markup(view), ("Antwoorden op", "Antworten an", "Répondre à")
        ) or label_value(main, ("Antwoorden op", "Antworten an", "Répondre à"))
    customer.email = choose_email(labelled_email, view, ctx, DOMAINS, ())
    customer.phone = label_value(
        main,
        (
            "Telefoonnummer",
            "Telefoon",
            "Telefonnummer",
            "Telefon",
            "Numéro de téléphone",
            "Téléphone",
            "Tél.",
        ),
    )

    lead.customer = customer
    lead.vehicle = _vehicle(main, link_markup(view), subject, headline)
    if trade_at is not None:
        lead.trade_in = _trade_in(text[trade_at:])
    missed_call = any(m in lowered for m in _MISSED_CALL)
    lead.message = None if missed_call else customer_text(section(main, _MESSAGE_STARTS, _STOPS))
    kind = detect_kind(" ".join(filter(None, (subject, lead.message))))
    lead.kind = "trade_in" if kind == "inquiry" and lead.trade_in else kind
    lead.is_lead = customer.has_contact()
    if not lead.is_lead:
        inquiry = headline or lead.message or missed_call
        if not inquiry:
            lead.non_lead_reason = f"autoscout24 notice: {subject or 'no subject'}"
        else:
            lead.warnings.append("autoscout24 inquiry without a customer e-mail or phone")
    if missed_call and lead.is_lead:
        lead.warnings.append("missed call: phone number only")
    lead.confidence = confidence(customer, lead.vehicle, lead.message) if lead.is_lead else 0.1
    return lead


def _vehicle(
    main: str, html: str | None, subject: str, headline: re.Match[str] | None
) -> VehicleData:
    title = label_value(main, ("Voertuig", "Fahrzeug", "Véhicule", "Advertentie"))
    if not title and headline:
        title = headline.group(2)
    if not title:
        found = _SUBJECT_VEHICLE.search(subject)
        title = found.group(1) if found else None
    make, model = split_vehicle(trim_title(title) if title else None)
    price_text = label_value(main, ("Vraagprijs", "Prijs", "Preis", "Verkaufspreis", "Prix"))
    if not price_text:
        found = _SUBJECT_PRICE.search(subject)
        price_text = found.group(0) if found else None
    return VehicleData(
        make=make,
        model=model,
        vin=label_value(main, ("FIN", "VIN", "Chassisnummer", "Numéro de châssis")),
        listing_id=listing_id(main, html),
        stock_number=label_value(
            main, ("Interne Nr.", "Interne Nummer", "Referentie", "Référence"), max_len=64
        ),
        price=price_from(price_text),
        mileage=mileage_from(label_value(main, ("Kilometerstand", "Kilométrage"))),
        first_registration=label_value(
            main, ("Bouwjaar", "Erstzulassung", "Première immatriculation"), max_len=32
        ),
    )


def listing_id(text: str, html: str | None) -> str | None:
    """The UUID that ends the offer URL, else a labelled ad number; never the plate."""
    for haystack in (html or "", text):
        found = _OFFER_URL.search(haystack)
        if found:
            return found.group(1).lower()
    value = label_value(text, ("Advertentienr.", "Advertentienr", "Angebotsnummer", "N° d'annonce"))
    if value:
        uuid = UUID.search(value)
        if uuid:
            return uuid.group(0).lower()
        token = re.match(r"([A-Za-z0-9][A-Za-z0-9-]{2,39})(?![\w-])", value)
        if token and any(ch.isdigit() for ch in token.group(1)):
            return token.group(1)
    return None


def _trade_in(block: str) -> VehicleData:
    """The customer's own car offered in part exchange; its asking value is not a price."""
    title = label_value(block, ("Voertuig", "Fahrzeug", "Véhicule"))
    make, model = split_vehicle(title)
    return VehicleData(
        make=label_value(block, ("Merk", "Marke", "Marque")) or make,
        model=label_value(block, ("Model", "Modell", "Modèle")) or model,
        vin=label_value(block, ("FIN", "VIN", "Chassisnummer")),
        mileage=mileage_from(label_value(block, ("Kilometerstand", "Kilométrage"))),
        first_registration=label_value(
            block, ("Bouwjaar", "Erstzulassung", "Première immatriculation"), max_len=32
        ),
    )


def _reply_to_name(view: MailView) -> str | None:
    """The display name of a customer ``Reply-To`` (the platform puts the customer there)."""
    for display, address in view.reply_to:
        if display and "@" not in display and not domain_matches(address, DOMAINS):
            return decode_words(display)
    return None
