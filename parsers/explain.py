"""``mailgate parse --explain``: each field with the reader that found it and why others lost.

Where it sits: beside the JSON output of ``mailgate parse``; it reads the
provenance the layered extractor (:mod:`.layers`) records on every lead.  It
is the admin's tool when a new layout arrives: a missing or wrong field shows
at once whether the source parser, the general reader, a scanner or the
catalogue produced it, under which label, and which other values were offered.

Every line names the field (its path and, in words, what it is) and says in
words which layer found the value and by what rule: "the label 'Telefon' in a
'Label: value' line", "a phone number in the customer's message", never just
a bare label or a layout code.
"""

from __future__ import annotations

import re

from .merge import CATALOGUE, GENERAL, SCANNER, SOURCE, SUBJECT
from .model import Loser, Origin, ParsedLead

_CUSTOMER = ("name", "salutation", "title", "first_name", "last_name", "email", "phone")
_CUSTOMER_MORE = ("street", "postcode", "city", "country")
_VEHICLE = (
    "make",
    "model",
    "vin",
    "listing_id",
    "stock_number",
    "price",
    "mileage",
    "first_registration",
)


FIELD_WORDS = {
    "customer.name": "customer's name",
    "customer.salutation": "salutation",
    "customer.title": "academic title",
    "customer.first_name": "first name",
    "customer.last_name": "last name",
    "customer.email": "customer's e-mail",
    "customer.phone": "customer's phone",
    "customer.street": "street",
    "customer.postcode": "postcode",
    "customer.city": "city",
    "customer.country": "country",
    "vehicle.make": "vehicle make",
    "vehicle.model": "vehicle model",
    "vehicle.vin": "vehicle identification number",
    "vehicle.listing_id": "the portal's ad number",
    "vehicle.stock_number": "the dealer's stock number",
    "vehicle.price": "asking price",
    "vehicle.mileage": "mileage",
    "vehicle.first_registration": "first registration",
    "message": "customer's message",
    "kind": "kind of inquiry",
}
# the general reader's layouts (reader.Pair.layout), in words
_LAYOUT_WORDS = {
    "label: value": "in a 'Label: value' line",
    "label : value": "in a 'Label : value' line",
    "label => value": "in a 'Label => value' line",
    "label -> value": "in a 'Label -> value' line",
    "label value": "at the start of a line, the value after it (no colon)",
    "columns": "in aligned columns, the value in the next column",
    "next line": "alone on its line, the value on the next line",
    "label alone": "alone on its line, the text below it",
    "definition list": "in an HTML definition list",
    "table: header row": "in an HTML table's header row, the value below it",
    "table: label column": "in an HTML table's first column, the value beside it",
    "contact block": "the contact lines after a bare customer label",
}
_PAIR_DETAIL = re.compile(r"^label (?P<label>'.*'|\".*\") \((?P<layout>[^()]*)\)(?P<rest>.*)$")


def explain(lead: ParsedLead, file: str | None = None) -> str:
    """A plain-text report, one line per field (plus a line per losing value)."""
    lines = []
    if file:
        lines.append(f"== {file}")
    verdict = "lead" if lead.is_lead else f"not a lead ({lead.non_lead_reason or 'no contact'})"
    lines.append(
        f"parser {lead.parser}, source {lead.source}, kind {lead.kind}, {verdict}, "
        f"confidence {lead.confidence:.2f}"
    )
    missing: list[str] = []
    for group, data, names in (
        ("customer", lead.customer, _CUSTOMER + _CUSTOMER_MORE),
        ("vehicle", lead.vehicle, _VEHICLE),
    ):
        for name in names:
            path = f"{group}.{name}"
            value = getattr(data, name)
            if value in (None, ""):
                if name in _CUSTOMER_MORE or name in ("salutation", "title"):
                    continue
                missing.append(path)
                lines.extend(_losers(lead, path))
                continue
            lines.append(f"{_field(path)}: {_show(value)}  ← {_origin(lead, path)}")
            lines.extend(_losers(lead, path))
    if lead.message:
        flat = " ".join(lead.message.split())
        more = " …" if len(flat) > 80 else ""
        lines.append(f"{_field('message')}: {_show(flat[:80])}{more}  ← {_origin(lead, 'message')}")
    else:
        missing.append("message")
    lines.extend(_losers(lead, "message"))
    lines.extend(_losers(lead, "kind"))
    for key, value in sorted(lead.extras.items()):
        lines.append(f"captured {key}: {_show(value)}  (kept for the salesperson, not a field)")
    if missing:
        lines.append("not found: " + ", ".join(missing))
    for warning in lead.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def _field(path: str) -> str:
    words = FIELD_WORDS.get(path)
    return f"{path} ({words})" if words and path != "message" else path


def _origin(lead: ParsedLead, path: str) -> str:
    origin = lead.provenance.get(path)
    if origin is None:
        if path.rpartition(".")[2] in ("first_name", "last_name", "salutation", "title"):
            return "finalize: split from the customer's full name"
        return "finalize: derived from the other fields"
    return f"{origin.reader}: {_how(origin, lead.parser)}"


def _how(found: Origin | Loser, parser: str) -> str:
    """How a layer found a value, in words (``Origin.detail`` is terse data)."""
    detail = found.detail.strip()
    if found.reader == SOURCE:
        if not detail or detail == parser:
            return f"the {parser} parser's own rules for this source's layout"
        if detail == "platform footer":
            return "the platform's footer, cut from the message"
        if detail == "shorter":
            return "the shorter model read first"
        if detail.startswith("read in "):
            return f"the number read in the dealer's region {detail[len('read in ') :]}"
        return detail
    if found.reader == GENERAL:
        return _pair_words(detail)
    if found.reader == SCANNER:
        where, _, words = detail.partition(": ")
        if where == "message" and words:
            return f"found in the customer's message, in {words}"
        if where == "text" and words:
            return f"found in the mail's text, in {words}"
        if where == "headline" and words:
            return f"the name in the platform's headline {words}"
        if detail.startswith("sign-off"):
            return "the name in the sign-off of the customer's message"
        return detail or "a free-text scanner"
    if found.reader == CATALOGUE:
        detail = detail.replace("in the the ", "in the ")
        if detail.startswith("title line "):
            return f"a title line in the body names {detail[len('title line ') :]}"
        if detail.startswith("catalogue via "):
            return f"a known make/model in {_pair_words(detail[len('catalogue via ') :])}"
        return f"a known make/model {detail}" if detail else "the make/model catalogue"
    if found.reader == SUBJECT:
        inner = detail.removeprefix("catalogue via ")
        return f"a known make/model in the {inner}" if inner else "the subject"
    return detail or found.reader


def _pair_words(detail: str) -> str:
    """``label 'Telefon' (label: value)`` -> ``the label 'Telefon' in a 'Label: value' line``."""
    match = _PAIR_DETAIL.match(detail)
    if match is None:
        return detail or "a labelled field"
    label, layout, rest = match["label"], match["layout"], match["rest"]
    if rest.startswith(", catalogue make "):
        rest = f", its words begin with the known make {rest[len(', catalogue make ') :]}"
    where = _LAYOUT_WORDS.get(layout, f"({layout})")
    if label in ("''", '""'):
        return f"an unlabelled value {where}{rest}"
    if layout == "contact block":
        return f"{where} ({label}){rest}"
    return f"the label {label} {where}{rest}"


def _losers(lead: ParsedLead, path: str) -> list[str]:
    return [
        f"    {path} lost: {_show(loser.value)} from {loser.reader}: "
        f"{_how(loser, lead.parser)} ({loser.why})"
        for loser in lead.losers.get(path, [])
    ]


def _show(value: object) -> str:
    text = " ".join(str(value).split())
    return repr(text[:120]) if isinstance(value, str) else text
