"""Layer 4, the catalogue: make and model from an offer line, the subject or prose.

The source parser's vehicle wins; the catalogue fills a missing make or model,
completes a short model from a title line in the body, and never takes the
customer's trade-in for the wanted car.
"""

from __future__ import annotations

import re

from . import catalogue, reader
from .merge import CATALOGUE, GENERAL, SOURCE, SUBJECT, offer_value, pair_detail
from .message import MailView
from .model import Loser, Origin, ParsedLead, VehicleData
from .normalize import normalise_make


def fill_from_catalogue(
    lead: ParsedLead, pairs: list[reader.Pair], view: MailView, text: str
) -> None:
    vehicle = lead.vehicle
    offer = next((p for p in pairs if p.key == "vehicle"), None)
    if offer is not None and not vehicle.make:
        _offer_line(lead, offer)
    _title_line(lead, text)
    if vehicle.make and vehicle.model:
        return
    places: list[tuple[str, str, str | None]] = []
    if offer is not None:
        places.append((GENERAL, pair_detail(offer), offer.value))
    places.append((SUBJECT, f"subject {view.subject!r}"[:100], view.subject))
    if vehicle.model:
        places.insert(0, (SOURCE, "the parser's model", f"{vehicle.make or ''} {vehicle.model}"))
    places.append((CATALOGUE, "message", lead.message))
    for reader_name, detail, text in places:
        found = catalogue.find_vehicle(text)
        if found is None:
            continue
        if vehicle.make and normalise_make(vehicle.make) != found.make:
            continue
        if _is_trade_in(lead, found):
            continue
        origin = CATALOGUE if reader_name == SOURCE else reader_name
        where = f"catalogue via {detail}" if origin != CATALOGUE else f"in the {detail}"
        offer_value(lead, "vehicle.make", found.make, origin, f"{where} ({found.matched!r})")
        if found.model and not vehicle.model:
            offer_value(lead, "vehicle.model", found.model, origin, f"{where} ({found.matched!r})")
        if vehicle.make and vehicle.model:
            return


def _title_line(lead: ParsedLead, text: str) -> None:
    """A title line in the body ("Renault Clio TCe 90 Evolution") completes a short model.

    Only the same car counts: the make must agree and the title must start with the
    model already read ("Clio" from the subject), so a trade-in or another offer
    never replaces it.
    """
    vehicle = lead.vehicle
    if vehicle.model and len(vehicle.model.split()) >= 3:
        return  # already a model with its trim
    text = text[:3000]
    prose = catalogue.find_vehicle(text)
    for title in catalogue.offer_lines(text) + ([prose] if prose else []):
        if _is_trade_in(lead, title) or not title.model:
            continue
        title = _cut_ids(title, vehicle)
        if vehicle.make and normalise_make(vehicle.make) != title.make:
            continue
        current = (vehicle.model or "").lower()
        if current and not title.model.lower().startswith(current):
            continue
        if len(title.model) <= len(current):
            return
        detail = f"title line {title.make!r} {title.model!r}"
        if vehicle.model:
            lead.losers.setdefault("vehicle.model", []).append(
                Loser(
                    lead.provenance.get("vehicle.model", Origin(SOURCE, "", "")).reader,
                    "shorter",
                    vehicle.model,
                    "a title line in the body names the full model",
                )
            )
            vehicle.model = None
        offer_value(lead, "vehicle.make", title.make, CATALOGUE, detail)
        offer_value(lead, "vehicle.model", title.model, CATALOGUE, detail)
        return


_AMOUNT = re.compile(r"\s\d{1,3}(?:[.,' ]\d{3})+(?:,\d{2})?\b.*$|\s(?:€|EUR|CHF)\b.*$")


def _cut_ids(title: catalogue.Vehicle, vehicle: VehicleData) -> catalogue.Vehicle:
    """A title from a table row keeps the columns after it: cut at the stock number or price."""
    model = _AMOUNT.sub("", title.model or "")
    for known in (vehicle.stock_number, vehicle.listing_id):
        if known and f" {known}" in f" {model}":
            model = model[: f" {model}".index(f" {known}")].strip()
    return catalogue.Vehicle(title.make, model.strip() or None, title.matched)


def _offer_line(lead: ParsedLead, offer: reader.Pair) -> None:
    """A labelled offer line naming a catalogue make: make + the rest of the line as model.

    A model without a make that names no known vehicle (a parser took the word
    "Angebot" from a subject) loses to it; the loss is recorded.
    """
    found = catalogue.find_vehicle(offer.value)
    if found is None or _is_trade_in(lead, found):
        return
    start = offer.value.find(found.matched)
    if start != 0:
        return  # the line does not start with the make: prose, left to the catalogue pass
    rest = offer.value[len(found.matched) :].strip(" -:,")
    rest = re.split(r"\s(?:€|EUR)\s?\d|\s\d[\d.,]*\s?(?:€|EUR)\b|,\s", rest)[0].strip()
    vehicle = lead.vehicle
    detail = f"{pair_detail(offer)}, catalogue make {found.matched!r}"
    known = catalogue.find_vehicle(f"{found.make} {vehicle.model}") if vehicle.model else None
    if vehicle.model and (known is None or known.model is None):
        if rest and found.model:
            lead.losers.setdefault("vehicle.model", []).append(
                Loser(SOURCE, lead.parser, vehicle.model, "names no known vehicle")
            )
            vehicle.model = None
    offer_value(lead, "vehicle.make", found.make, GENERAL, detail)
    offer_value(lead, "vehicle.model", rest or found.model, GENERAL, detail)


def _is_trade_in(lead: ParsedLead, found: catalogue.Vehicle) -> bool:
    """The customer's own car (named in the subject of a trade-in lead) is not the wanted one."""
    trade = lead.trade_in
    if trade is None:
        return False
    return normalise_make(trade.make) == found.make or bool(
        trade.model and found.model and trade.model.split()[0] == found.model.split()[0]
    )
