"""What a parser returns: a :class:`ParsedLead`, independent of the source format.

The field names are the ``mailgate parse --json`` contract (ARCHITECTURE.md), so
``to_json`` is a plain ``asdict`` with absent values as ``None``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

SOURCES = ("mobile.de", "kleinanzeigen", "autoscout24", "adf", "website", "unknown")
KINDS = ("inquiry", "test_drive", "trade_in", "financing", "service", "other")
_OEM_SOURCE = re.compile(r"^oem:[a-z0-9]+(?:-[a-z0-9]+)*$")


def is_valid_source(source: str) -> bool:
    """One of :data:`SOURCES`, or ``oem:<brand slug>`` (``oem:mercedes-benz``)."""
    return source in SOURCES or bool(_OEM_SOURCE.match(source))


@dataclass
class CustomerData:
    salutation: str | None = None
    title: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    phone_e164: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None

    def has_contact(self) -> bool:
        return bool(self.email or self.phone)


@dataclass
class VehicleData:
    make: str | None = None
    model: str | None = None
    vin: str | None = None
    listing_id: str | None = None
    stock_number: str | None = None
    price: float | None = None
    mileage: int | None = None
    first_registration: str | None = None
    # where the vehicle stands (a branch): routes the lead when use_vehicle_location is on
    location: str | None = None

    def is_empty(self) -> bool:
        return not any(asdict(self).values())


@dataclass(frozen=True)
class Origin:
    """Which reader produced a field value, and from what (``mailgate parse --explain``).

    ``reader`` is one of :data:`READERS`; ``detail`` says where: the parser's
    name, the label and layout, the words around a scanned value.
    """

    reader: str
    detail: str
    value: str


@dataclass(frozen=True)
class Loser:
    """A value another reader offered for a field and why it was not taken."""

    reader: str
    detail: str
    value: str
    why: str


# the layers under a lead, strongest first (parsers/layers.py merges them in this order)
READERS = ("source parser", "general reader", "scanner", "catalogue", "subject")


@dataclass
class ParsedLead:
    parser: str
    source: str = "unknown"
    kind: str = "inquiry"
    is_lead: bool = False
    customer: CustomerData = field(default_factory=CustomerData)
    vehicle: VehicleData = field(default_factory=VehicleData)
    trade_in: VehicleData | None = None
    message: str | None = None
    subject: str | None = None
    confidence: float = 0.0
    warnings: list[str] = field(default_factory=list)
    non_lead_reason: str | None = None
    # the campaign or lead type the source names (OEM systems), for list filters and reports;
    # not part of the contract's JSON (mailgate parse --json)
    campaign: str | None = None
    source_ref: str | None = None  # the source's own lead number (OEM lead/process number)
    handed_over: bool = False  # a notice that the source's call centre took the lead over
    # "customer.phone" -> where the value came from, and the values that lost; neither is
    # part of the contract's JSON: ``mailgate parse --explain`` prints them
    provenance: dict[str, Origin] = field(default_factory=dict, repr=False)
    losers: dict[str, list[Loser]] = field(default_factory=dict, repr=False)
    # values captured for a human but not part of the contract (licence plate, contact time)
    extras: dict[str, str] = field(default_factory=dict, repr=False)

    def to_json(self, file: str | None = None) -> dict[str, Any]:
        """The contract's JSON object for ``mailgate parse --json``."""
        data: dict[str, Any] = {
            "file": file,
            "parser": self.parser,
            "source": self.source,
            "kind": self.kind,
            "is_lead": self.is_lead,
            "customer": asdict(self.customer),
            "vehicle": asdict(self.vehicle),
            "trade_in": asdict(self.trade_in) if self.trade_in else None,
            "message": self.message,
            "confidence": round(self.confidence, 2),
            "warnings": list(self.warnings),
            "non_lead_reason": self.non_lead_reason,
        }
        return data
