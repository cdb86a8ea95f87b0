"""Source parsers: turn one raw inquiry mail into a :class:`ParsedLead`.

``parse_raw`` is the single entry point used by the pipeline and by
``mailgate parse``; it never raises on bad input.
"""

from __future__ import annotations

from .message import ShapeError, check_shape, load
from .model import CustomerData, ParsedLead, VehicleData
from .nonlead import non_lead_reason
from .registry import PARSERS, pick

__all__ = [
    "PARSERS",
    "CustomerData",
    "ParsedLead",
    "ShapeError",
    "VehicleData",
    "parse_raw",
]


def parse_raw(
    raw: bytes,
    *,
    envelope_from: str | None = None,
    dealer_addresses: frozenset[str] = frozenset(),
) -> ParsedLead:
    """Best-effort lead (or non-lead with a reason) from raw bytes; never raises."""
    try:
        check_shape(raw)
    except ShapeError as exc:
        return ParsedLead(parser="none", warnings=[str(exc)], non_lead_reason=f"shape: {exc}")
    try:
        view = load(raw)
        reason = non_lead_reason(view, envelope_from)
        if reason:
            return ParsedLead(
                parser="none", subject=view.subject, warnings=view.warnings, non_lead_reason=reason
            )
        module = pick(view)
        return module.parse(view, dealer_addresses)
    except Exception as exc:  # noqa: BLE001 - the contract: a broken mail still yields an object
        return ParsedLead(
            parser="none",
            warnings=[f"parser error: {type(exc).__name__}: {exc}"[:500]],
            non_lead_reason="unparseable",
        )
