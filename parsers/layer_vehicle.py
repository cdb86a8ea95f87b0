"""Layer 2, the vehicle: VIN, ids, price, mileage, make and model from labelled pairs.

Labels say which number is which; a licence plate is never a stock number.
The extras (plate, contact time, appointment) are captured for the salesperson.
"""

from __future__ import annotations

import re

from . import catalogue, reader, scanners
from .lexicon import is_weak_label
from .merge import GENERAL, SOURCE, offer_value, pair_detail
from .message import clean_line
from .model import Loser, Origin, ParsedLead
from .normalize import clean_vin, normalise_make, parse_price

_VEHICLE_KEYS = (
    "vin",
    "listing_id",
    "stock_number",
    "price",
    "mileage",
    "first_registration",
)


def fill_vehicle(lead: ParsedLead, pairs: list[reader.Pair]) -> None:
    by_key: dict[str, reader.Pair] = {}
    weak: reader.Pair | None = None
    for pair in pairs:
        if pair.key == "stock_number" and is_weak_label(pair.label):
            weak = weak or pair
            continue
        by_key.setdefault(pair.key, pair)
    if weak is not None:
        # "Fahrzeug-ID" is the dealer's number, unless the dealer's number has its own
        # label ("Ihre Bestandsnummer"): then it is the portal's id for the car
        by_key.setdefault("listing_id" if "stock_number" in by_key else "stock_number", weak)
    converters = {
        "vin": clean_vin,
        "price": parse_price,
        "mileage": _mileage,
        "listing_id": _token,
        "stock_number": _stock,
        "first_registration": lambda v: clean_line(v, 32),
    }
    for key in _VEHICLE_KEYS:
        pair = by_key.get(key)
        if pair is not None:
            offer_value(
                lead, f"vehicle.{key}", converters[key](pair.value), GENERAL, pair_detail(pair)
            )
    make, model = by_key.get("make"), by_key.get("model")
    if make:
        offer_value(lead, "vehicle.make", normalise_make(make.value), GENERAL, pair_detail(make))
    if model:
        value = model.value
        if make and value.lower().startswith(make.value.lower() + " "):
            value = value[len(make.value) + 1 :]
        elif not make:
            value = _without_make(lead, model)
        offer_value(lead, "vehicle.model", value, GENERAL, pair_detail(model))
    _add_trim(lead, by_key.get("trim"))
    offer = by_key.get("vehicle")
    if offer is not None and not lead.vehicle.stock_number:
        # "Anzeige: Toyota Yaris Cross (Nr. Y-3305)": the dealer's number in the offer line
        hit = next(iter(scanners.stock_numbers(offer.value)), None)
        if hit:
            offer_value(lead, "vehicle.stock_number", hit.value, GENERAL, pair_detail(offer))


def _without_make(lead: ParsedLead, model: reader.Pair) -> str:
    """ "Modell: Opel Frontera" without a make label: the catalogue make is the make,
    the rest the model (as the OEM parsers split their own model line)."""
    value = model.value
    found = catalogue.find_vehicle(value)
    if found is None:
        return value
    # the make as written: its catalogue name or the first word the catalogue matched ("VW")
    for written in (found.make, found.matched.split()[0] if found.matched.split() else ""):
        if normalise_make(written) != found.make:
            continue  # "IONIQ 5 N": the catalogue knew the model, no make is written
        if value.lower().startswith(written.lower() + " "):
            offer_value(lead, "vehicle.make", found.make, GENERAL, pair_detail(model))
            return value[len(written) + 1 :].strip() or value
    return value


_TRIM_WORDS = 6
_TRIM_CHARS = 40


def _add_trim(lead: ParsedLead, trim: reader.Pair | None) -> None:
    """A labelled trim line completes the model, as the OEM parsers do with their own label.

    Only a short trim name ("N-Connecta e-POWER", "S line 40 TDI quattro") counts: a
    marketplace's "Ausstattung: Navi, Sitzheizung, …" is a list of equipment.
    """
    vehicle = lead.vehicle
    if trim is None or not vehicle.model:
        return
    value = " ".join(trim.value.split())
    if not value or "," in value or ";" in value or len(value) > _TRIM_CHARS:
        return
    if len(value.split()) > _TRIM_WORDS:
        return
    if value.lower() in vehicle.model.lower():
        return
    origin = lead.provenance.get("vehicle.model")
    lead.losers.setdefault("vehicle.model", []).append(
        Loser(origin.reader if origin else SOURCE, "without its trim", vehicle.model, "trim line")
    )
    vehicle.model = f"{vehicle.model} {value}"
    lead.provenance["vehicle.model"] = Origin(GENERAL, pair_detail(trim), vehicle.model)


def _mileage(value: str) -> int | None:
    found = re.search(r"\d{1,3}(?:[.,' \u00a0]\d{3})+|\d+", value)
    return int(re.sub(r"\D", "", found.group(0))) if found else None


def _token(value: str) -> str | None:
    token = value.split()[0].strip(".,;:()#") if value.split() else ""
    return token if any(ch.isdigit() for ch in token) and len(token) <= 40 else None


def _stock(value: str) -> str | None:
    """A dealer's stock number; a licence plate never is one."""
    if scanners.is_plate(value):
        return None
    return _token(value)


def capture_extras(lead: ParsedLead, pairs: list[reader.Pair]) -> None:
    for pair in pairs:
        if pair.key in ("plate", "contact_time", "contact_way", "appointment"):
            key = f"{pair.section}.{pair.key}" if pair.section != "main" else pair.key
            lead.extras.setdefault(key, pair.value)
