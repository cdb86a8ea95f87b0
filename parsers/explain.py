"""``mailgate parse --explain``: each field with the reader that found it and why others lost.

Where it sits: beside the JSON output of ``mailgate parse``; it reads the
provenance the layered extractor (:mod:`.layers`) records on every lead.  It
is the admin's tool when a new layout arrives: a missing or wrong field shows
at once whether the source parser, the general reader, a scanner or the
catalogue produced it, under which label, and which other values were offered.
"""

from __future__ import annotations

from .model import ParsedLead

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
            lines.append(f"{path}: {_show(value)}  ← {_origin(lead, path)}")
            lines.extend(_losers(lead, path))
    if lead.message:
        flat = " ".join(lead.message.split())
        more = " …" if len(flat) > 80 else ""
        lines.append(f"message: {_show(flat[:80])}{more}  ← {_origin(lead, 'message')}")
    else:
        missing.append("message")
    lines.extend(_losers(lead, "message"))
    for key, value in sorted(lead.extras.items()):
        lines.append(f"captured {key}: {_show(value)}")
    if missing:
        lines.append("not found: " + ", ".join(missing))
    for warning in lead.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def _origin(lead: ParsedLead, path: str) -> str:
    origin = lead.provenance.get(path)
    if origin is None:
        return "finalize (derived from other fields)"
    return f"{origin.reader} ({origin.detail})"


def _losers(lead: ParsedLead, path: str) -> list[str]:
    return [
        f"    lost: {loser.reader} {loser.detail}: {_show(loser.value)} ({loser.why})"
        for loser in lead.losers.get(path, [])
    ]


def _show(value: object) -> str:
    text = " ".join(str(value).split())
    return repr(text[:120]) if isinstance(value, str) else text
