"""Merge with provenance: which layer set a field, what the others offered, who wins.

The layers (:mod:`.layers`) offer values strongest first; :func:`offer_value` keeps the
first and records every later, different one as a loser with the reason, so
``mailgate parse --explain`` can say why it lost.  :func:`settle_lead` turns a
disagreement on an identifying field into lower confidence and a "please check"
warning instead of a silent guess.
"""

from __future__ import annotations

import re
from functools import lru_cache

from . import reader
from .model import Loser, Origin, ParsedLead
from .normalize import phone_e164

SOURCE, GENERAL, SCANNER, CATALOGUE, SUBJECT = (
    "source parser",
    "general reader",
    "scanner",
    "catalogue",
    "subject",
)
# disagreement on these means one of the two readers took the wrong thing
_IDENTIFYING = ("customer.email", "customer.phone", "vehicle.vin", "vehicle.price")
CONFLICT_PENALTY = 0.2
FREE_FORM_SOURCES = ("website", "unknown")
_NO_CONTACT = ("without a customer e-mail", "no customer e-mail")


def record_source(lead: ParsedLead) -> None:
    for group, data in (("customer", lead.customer), ("vehicle", lead.vehicle)):
        for name, value in vars(data).items():
            if value is not None and value != "" and f"{group}.{name}" not in lead.provenance:
                lead.provenance[f"{group}.{name}"] = Origin(SOURCE, lead.parser, str(value))
    if lead.message and "message" not in lead.provenance:
        lead.provenance["message"] = Origin(SOURCE, lead.parser, lead.message[:80])


def offer_value(lead: ParsedLead, path: str, value: object, reader_name: str, detail: str) -> bool:
    """Set ``path`` to ``value`` if empty (True), else record ``value`` as a loser."""
    group, _, name = path.partition(".")
    target = lead.customer if group == "customer" else lead.vehicle
    current = getattr(target, name)
    if value in (None, ""):
        return False
    if current in (None, ""):
        setattr(target, name, value)
        lead.provenance[path] = Origin(reader_name, detail, str(value))
        return True
    if _same(path, current, value):
        return False
    winner = lead.provenance.get(path)
    why = f"{winner.reader} wins" if winner else "an earlier value wins"
    lead.losers.setdefault(path, []).append(Loser(reader_name, detail, str(value), why))
    return False


def _same(path: str, left: object, right: object) -> bool:
    if path == "customer.phone":
        return digits(left) == digits(right) or e164(str(left)) == e164(str(right))
    if path == "vehicle.price":
        return abs(float(left) - float(right)) < 1.0  # type: ignore[arg-type]
    a = re.sub(r"[\W_]+", "", str(left)).lower()
    b = re.sub(r"[\W_]+", "", str(right)).lower()
    return a == b or (bool(a) and bool(b) and (a in b or b in a))


@lru_cache(maxsize=256)
def e164(value: str) -> str | None:
    return phone_e164(value)


def digits(value: object) -> str:
    return re.sub(r"\D", "", str(value))[-9:]


def pair_detail(pair: reader.Pair) -> str:
    return f"label {pair.label!r} ({pair.layout})"


def settle_lead(lead: ParsedLead) -> None:
    """Contact found by a lower layer makes a lead; disagreements lower the confidence."""
    if not lead.is_lead and lead.customer.has_contact():
        lead.is_lead = True
        lead.warnings = [w for w in lead.warnings if not any(n in w for n in _NO_CONTACT)]
        lead.confidence = max(lead.confidence, 0.45)
    for path in _IDENTIFYING:
        origin = lead.provenance.get(path)
        disagreeing = [loser for loser in lead.losers.get(path, []) if loser.reader == GENERAL]
        if origin and origin.reader == SOURCE and disagreeing:
            lead.confidence = max(0.0, lead.confidence - CONFLICT_PENALTY)
            lead.warnings.append(
                f"please check {path.split('.')[1]}: the parser read {origin.value!r}, "
                f"the label {disagreeing[0].detail} says {disagreeing[0].value!r}"
            )
