"""Layer 2, the customer: name, e-mail, phone and address from labelled pairs.

Also the names no label gives: a platform's headline ("Neue Nachricht von …")
and the sign-off of the customer's own message.
"""

from __future__ import annotations

import re

from . import reader, scanners
from .context import ParseContext
from .fields import EMAIL_PATTERN, is_dealer_address, is_system_address
from .merge import GENERAL, SCANNER, SOURCE, offer_value, pair_detail
from .message import clean_line
from .model import Loser, Origin, ParsedLead
from .normalize import split_name


def fill_customer(lead: ParsedLead, pairs: list[reader.Pair], ctx: ParseContext) -> None:
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
    elif (
        not _completes_initial(lead, names.get("name"))
        and not _completes_half_name(lead, names)
        and names.get("name")
    ):
        offer_value(lead, "customer.name", names["name"].value, GENERAL, pair_detail(names["name"]))
    for pair in by_key.get("email", []):
        found = EMAIL_PATTERN.search(pair.value)
        if not found:
            continue
        address = found.group(0)
        if is_dealer_address(address, ctx.dealer_addresses) or is_system_address(address):
            continue
        offer_value(lead, "customer.email", address, GENERAL, pair_detail(pair))
        break
    for pair in by_key.get("phone", [])[:1]:
        offer_value(lead, "customer.phone", _first_phone(pair.value), GENERAL, pair_detail(pair))
    for key in ("street", "postcode", "city", "country"):
        for pair in by_key.get(key, [])[:1]:
            offer_value(lead, f"customer.{key}", pair.value, GENERAL, pair_detail(pair))
    both = by_key.get("postcode_city", [])
    if both and not customer.postcode:
        match = re.match(r"((?:[A-Z]{1,2}-)?\d{4,5})\s+(.+)", both[0].value)
        if match:
            offer_value(lead, "customer.postcode", match.group(1), GENERAL, pair_detail(both[0]))
            offer_value(lead, "customer.city", match.group(2), GENERAL, pair_detail(both[0]))


def _completes_initial(lead: ParsedLead, full: reader.Pair | None) -> bool:
    """A first name the parser has only as an initial (from a sender line) is completed by
    a labelled name with the same last name and that initial.  True if it was."""
    customer = lead.customer
    first, last = customer.first_name or "", customer.last_name or ""
    if full is None or not last or len(first.rstrip(".")) != 1 or not first.endswith("."):
        return False
    _, _, labelled_first, labelled_last = split_name(full.value)
    if not labelled_first or (labelled_last or "").lower() != last.lower():
        return False
    if not labelled_first[:1].lower() == first[:1].lower() or len(labelled_first) < 2:
        return False
    lead.losers.setdefault("customer.name", []).append(
        Loser(SOURCE, lead.parser, customer.name or "", "a labelled name spells out the initial")
    )
    _set_name(lead, full.value, Origin(GENERAL, pair_detail(full), full.value))
    return True


def _completes_half_name(lead: ParsedLead, names: dict[str, reader.Pair]) -> bool:
    """The parser read only a last or only a first name (the other's label had a word it
    does not know): the labelled other half the reader found completes the name
    ("Nome di battesimo: Björn", "Family name: Løvås").  True if it did."""
    customer = lead.customer
    have = customer.last_name or customer.first_name
    if not have or (customer.last_name and customer.first_name):
        return False
    missing = "first_name" if customer.last_name else "last_name"
    other = names.get(missing)
    if other is None or not reader.plausible(missing, other.value):
        return False
    name = (customer.name or "").lower()
    value = " ".join(other.value.split())
    if name != have.lower() or value.lower() in name:
        return False
    lead.losers.setdefault("customer.name", []).append(
        Loser(
            SOURCE, lead.parser, customer.name or "", f"the {missing.replace('_', ' ')} is labelled"
        )
    )
    setattr(customer, missing, value)
    customer.name = clean_line(f"{customer.first_name} {customer.last_name}")
    for path in (f"customer.{missing}", "customer.name"):
        lead.provenance[path] = Origin(GENERAL, pair_detail(other), customer.name or "")
    return True


def name_from_headline(lead: ParsedLead, text: str) -> None:
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


def name_from_signoff(lead: ParsedLead) -> None:
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
        lead.provenance["customer.name"] = Origin(GENERAL, pair_detail(source), customer.name)
