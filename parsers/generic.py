"""The generic fallback parser: labelled fields (``Name: …``) and free text.

Works for any mail that lists its data as ``label: value`` lines or table rows,
in German, English, Dutch or French, and for a plain mail a person wrote
directly.  It is the last entry of the registry, so a source nobody wrote a
parser for still yields a usable lead.  :func:`extract` is shared with the
website parser, whose forms are labelled lists as well.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .fields import (
    EMAIL_PATTERN,
    choose_customer_email,
    dealer_domains,
    detect_kind,
    is_dealer_address,
    is_system_address,
    label_key,
    labelled_fields,
)
from .gate import gated
from .message import MailView, clean_line
from .model import CustomerData, ParsedLead, VehicleData
from .nonlead import non_lead_reason
from .normalize import known_make, parse_price, split_name
from .signals import domain_of, lookalike_reason, platform_of, registrable_domain

NAME = "generic"

# Where the customer's own words end: quoted replies, forwards, signatures.
_QUOTE_HEADER = gated(
    r"(?im)^[ \t]*(?:am\s.{4,80}\sschrieb\s.{0,120}:|on\s.{4,80}\swrote:|op\s.{4,80}\sschreef"
    r"\s.{0,120}:|le\s.{4,80}\sa\s[ée]crit\s?:|-{2,}\s*(?:urspr[üu]ngliche nachricht|original "
    r"message|forwarded message|weitergeleitete nachricht|oorspronkelijk bericht|message d.origine"
    r")\s*-{2,}|_{10,}|begin forwarded message:"
    r"|gesendet:\s.{4,60}\b(?:um\s)?\d{1,2}:\d{2}(?:\s?uhr)?)\s*$",
    (
        "schrieb",
        "wrote:",
        "schreef",
        "crit",
        "--",
        "_" * 10,
        "begin forwarded message:",
        "gesendet:",
    ),
)
# Relay mails whose text part was generated from HTML keep "[text](https://…)" links.
_MARKDOWN_LINK = re.compile(r"\[([^\[\]\n]{1,200})\]\((?:https?|mailto):[^()\s]{1,2000}\)")
_MOBILE_FOOTER = re.compile(
    r"(?im)^[ \t]*(?:gesendet von meinem|von meinem \S+ gesendet|sent from my|verzonden vanaf mijn"
    r"|envoy[ée] de mon)\b.*$"
)
_PHONE_WORD = re.compile(
    r"(?i)\b(?:tel\.?|telefon|phone|mobil|handy|erreichbar|call|bel|gsm|téléphone|tél\.?"
    r"|zurück|rückruf|callback|terugbellen)\b[^\n]{0,40}?((?:\+|0)\d[\d /()-]{4,22}\d)"
)
# Footer lines a platform appends below the customer's message.
_FOOTER_LINE = re.compile(
    r"(?i)\b(?:impressum|datenschutzerklärung|privacy policy|privacy|terms of use|terms"
    r"|unsubscribe|abmelden|afmelden|désinscri|all rights reserved|alle rechte vorbehalten)\b|©"
)
_INLINE_PRICE = re.compile(r"[,;(]?\s*\b(?:preis|price|prijs|prix)\b\s*:?\s*(.+)$", re.IGNORECASE)


def matches(view: MailView) -> bool:
    """The fallback matches every mail."""
    return True


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    """Labelled fields and free text; a mail imitating a platform is read but never a lead."""
    lead = extract(view, ctx, from_is_customer=not system_sent(view))
    # non_lead_reason already ran on the mail as received; this catches a forwarded
    # original (an employee forwarding an auto-reply or a bounce files no lead either)
    reason = lookalike_reason(view, dealer_domains(ctx.dealer_addresses)) or non_lead_reason(
        view, None
    )
    if reason:
        lead.is_lead = False
        lead.non_lead_reason = reason
        lead.confidence = 0.05
        lead.warnings.append(f"{reason}: not filed as a lead")
    return lead


def system_sent(view: MailView) -> bool:
    """From a platform, a portal or a form service: the sender is never the customer.

    Portals without a parser of their own (pkw.de, AutoUncle, heycar ...) send
    from addresses no no-reply pattern knows (``dealer-leads@``); their
    display name ("AutoUncle") is no customer's name either.
    """
    from .website import SYSTEM_DOMAINS

    for _, address in view.from_addresses:
        if platform_of(address) or registrable_domain(domain_of(address)) in SYSTEM_DOMAINS:
            return True
    return False


def extract(
    view: MailView,
    ctx: ParseContext,
    *,
    parser: str = NAME,
    source: str = "unknown",
    text: str | None = None,
    extra: dict[str, str] | None = None,
    from_is_customer: bool = True,
) -> ParsedLead:
    """A lead from labelled fields in ``text`` (default: the mail's text) plus ``extra``.

    ``extra`` holds fields a caller already found elsewhere (a Contact Form 7
    ``From: name <address>`` line); they only fill gaps, a labelled field in
    the body wins.
    """
    body = view.text if text is None else text
    fields = labelled_fields(unquoted(body))
    for key, value in (extra or {}).items():
        if value:
            fields.setdefault(key, value)
    customer = CustomerData()
    customer.email = choose_customer_email(
        fields.get("email"), view, ctx.dealer_addresses, from_is_customer=from_is_customer
    )
    _fill_name(customer, fields, view, ctx)
    customer.phone = fields.get("phone")
    if not customer.phone and not fields:
        # a mail a person wrote: the phone number in their own signature is theirs
        customer.phone = phone_in_text(unquoted(body))
    customer.street = fields.get("street")
    customer.postcode = fields.get("postcode")
    customer.city = fields.get("city")
    customer.country = fields.get("country")
    if customer.postcode is None and fields.get("postcode_city"):
        match = re.match(r"([A-Z]{0,2}-?\d{4,5}(?:\s?[A-Z]{2})?)\s+(.+)", fields["postcode_city"])
        if match:
            customer.postcode, customer.city = match.group(1), match.group(2)
    vehicle = vehicle_from(fields)
    message = fields.get("message")
    if message:
        message = _without_footer(_MARKDOWN_LINK.sub(r"\1", message))
    else:
        message = customer_text(body, with_labels=False)
    lead = ParsedLead(
        parser=parser,
        source=source,
        kind=detect_kind(" ".join(filter(None, (view.subject, message, fields.get("subject"))))),
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


def _fill_name(
    customer: CustomerData, fields: dict[str, str], view: MailView, ctx: ParseContext
) -> None:
    """Name from the labelled fields, else the display name that goes with the chosen address."""
    if fields.get("first_name") and fields.get("name") and not fields.get("last_name"):
        if fields["first_name"].lower() not in fields["name"].lower():
            fields["last_name"] = fields.pop("name")  # French forms: "Nom" + "Prénom"
    full_name = fields.get("name") or _join(fields.get("first_name"), fields.get("last_name"))
    if full_name:
        salutation, title, first, last = split_name(full_name)
        if fields.get("last_name"):
            # separate form fields are authoritative: "de la Cruz" stays whole
            last = fields["last_name"]
            s2, t2, f2, l2 = split_name(fields.get("first_name"))
            first = _join(f2, l2)
            salutation, title = salutation or s2, title or t2
        customer.salutation = _salutation(fields.get("salutation")) or salutation
        customer.title = title
        customer.first_name, customer.last_name = first, last
        customer.name = clean_line(_join(first, last)) or full_name
        return
    if not customer.email:
        return
    for display, address in view.reply_to + view.from_addresses:
        if address.lower() != customer.email.lower() or not display:
            continue
        if EMAIL_PATTERN.search(display) or is_system_address(address):
            continue
        if is_dealer_address(address, ctx.dealer_addresses):
            continue
        display = re.sub(r"\s+(?:über|via|via:)\s+.*$", "", display, flags=re.IGNORECASE)
        salutation, title, first, last = split_name(display)
        customer.salutation, customer.title = salutation, title
        customer.first_name, customer.last_name = first, last
        customer.name = clean_line(_join(first, last)) or display
        return


def vehicle_from(fields: dict[str, str]) -> VehicleData:
    """Make/model/ids/price from labelled fields; ``VW Golf 8`` becomes make + model."""
    make = fields.get("make")
    model = fields.get("model")
    price_text = fields.get("price")
    inline = _INLINE_PRICE.search(model or "")
    if model and inline:
        price_text = price_text or inline.group(1)
        model = model[: inline.start()].strip(" ,;-") or None
    if model and not make:
        first, _, rest = model.partition(" ")
        two = " ".join(model.split()[:2])
        if known_make(two) and len(model.split()) > 2:
            make, model = known_make(two), " ".join(model.split()[2:])
        elif known_make(first) and rest:
            make, model = known_make(first), rest.strip()
    elif model and make and model.lower().startswith(make.lower() + " "):
        model = model[len(make) + 1 :].strip()
    return VehicleData(
        make=make,
        model=model,
        vin=fields.get("vin"),
        listing_id=fields.get("listing_id"),
        stock_number=fields.get("stock_number"),
        price=parse_price(price_text),
        location=fields.get("vehicle_location"),
    )


def customer_text(text: str, *, with_labels: bool = True) -> str | None:
    """The customer's own words: no quoted reply, forward, signature or mobile footer.

    With ``with_labels=False`` lines that are known ``label: value`` fields are
    dropped too, so a labelled form without a message field does not repeat
    its fields as the message.
    """
    cut = _QUOTE_HEADER.search(text)
    if cut:
        text = text[: cut.start()]
    lines = []
    for line in text.splitlines():
        if line.rstrip() == "--" or line.startswith("-- ") or _MOBILE_FOOTER.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        if not with_labels and _is_field_line(line):
            continue
        lines.append(line.rstrip())
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    body = _MARKDOWN_LINK.sub(r"\1", body)
    return body[:20_000] or None


def _without_footer(message: str) -> str | None:
    """The labelled message without a trailing platform footer paragraph."""
    paragraphs = message.split("\n\n")
    while len(paragraphs) > 1 and _FOOTER_LINE.search(paragraphs[-1]):
        paragraphs.pop()
    return "\n\n".join(paragraphs).strip() or None


def unquoted(text: str) -> str:
    """``text`` without a quoted reply or forward below it and without ``>`` lines.

    The signature stays: in a mail a person wrote, it holds their own number.
    """
    cut = _QUOTE_HEADER.search(text)
    if cut:
        text = text[: cut.start()]
    lines = text.splitlines()
    if ">" not in text:
        return "\n".join(lines)  # nothing quoted: no per-line test
    return "\n".join(line for line in lines if not line.lstrip().startswith(">"))


def phone_in_text(text: str) -> str | None:
    """A phone number written after a phone word (``Tel. 0171 …``, ``erreichbar unter …``)."""
    for match in _PHONE_WORD.finditer(text):
        number = match.group(1).strip()
        if sum(ch.isdigit() for ch in number) >= 6:
            return number
    return None


def _is_field_line(line: str) -> bool:
    label, sep, _ = line.partition(":")
    return bool(sep) and len(label) <= 40 and label_key(label) is not None


def _salutation(value: str | None) -> str | None:
    if not value:
        return None
    salutation, _, _, _ = split_name(f"{value} X")
    return salutation or clean_line(value)


def _join(*parts: str | None) -> str | None:
    joined = " ".join(p for p in parts if p)
    return joined or None
