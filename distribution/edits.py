"""Correcting a lead's customer and vehicle data by hand (the parser misread a field).

Only open leads are edited: a closed lead is a record of what happened.  Every
change is written to the protocol as ``field: old -> new`` so nobody wonders
later where a phone number came from.  The customer's matching keys (phone in
E.164, folded name and street) are recomputed, so a corrected customer is
recognised the next time he writes.  A customer row is shared by all leads of
that customer: correcting his phone number corrects it everywhere, which is
the point of matching customers at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailgate.escalation.handover import handed_over_problem
from mailgate.models import OPEN_STATUSES, Customer, Lead
from mailgate.protocol import Phrase, phrase
from mailgate.protocol_log import log

from . import matching
from .actions import ActionError

CUSTOMER_EDIT_FIELDS = (
    "salutation",
    "title",
    "first_name",
    "last_name",
    "name",
    "email",
    "phone",
    "street",
    "postcode",
    "city",
    "country",
)
VEHICLE_EDIT_FIELDS = (
    "make",
    "model",
    "price",
    "mileage",
    "first_registration",
    "vin",
    "listing_id",
    "stock_number",
)
NUMERIC_VEHICLE_FIELDS = ("price", "mileage")
CUSTOMER_LIMITS = {"email": 320, "phone": 64, "postcode": 32, "country": 64}


def _clean(value: Any) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _number(field: str, value: str | None) -> int | float | None:
    if value is None:
        return None
    text = value.replace("€", "").replace("km", "").replace(" ", "").strip()
    # German notation first (38.450,50), then plain digits.
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    elif text.count(".") >= 1 and len(text.rsplit(".", 1)[1]) == 3:
        text = text.replace(".", "")
    try:
        number = float(text)
    except ValueError as exc:
        raise ActionError(f"{field}: {value!r} is not a number") from exc
    if number < 0:
        raise ActionError(f"{field}: {value!r} is negative")
    return int(number) if number.is_integer() else number


def _show(value: Any) -> str:
    return "–" if value in (None, "") else str(value)


Change = tuple[str, str, str]  # field, old value, new value (as shown)


def vehicle_changes(
    current: Mapping[str, Any] | None, wanted: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Change]]:
    """The new vehicle dict and the changes as (field, old, new) (pure)."""
    result = dict(current or {})
    changes: list[Change] = []
    for field in VEHICLE_EDIT_FIELDS:
        if field not in wanted:
            continue
        new: Any = _clean(wanted[field])
        if field in NUMERIC_VEHICLE_FIELDS:
            new = _number(field, new)
        old = result.get(field)
        if _clean(old) == _clean(new):
            continue
        if new is None:
            result.pop(field, None)
        else:
            result[field] = new
        changes.append((field, _show(old), _show(new)))
    return result, changes


def _customer_keys(customer: Customer) -> None:
    customer.phone_e164 = matching.normalise_phone(customer.phone)
    customer.match_name = matching.name_key(customer.name, customer.first_name, customer.last_name)
    customer.match_street = matching.street_key(customer.street)


def edit_lead(
    session: Session,
    lead_id: int,
    actor: str,
    now: datetime,
    *,
    customer: Mapping[str, Any] | None = None,
    vehicle: Mapping[str, Any] | None = None,
    trade_in: Mapping[str, Any] | None = None,
) -> list[Phrase]:
    """Apply the edits to an open lead; returns the changes (empty: nothing changed).

    Validates everything before changing anything (an :class:`ActionError`
    leaves the lead as it was).  No commit: the caller's transaction.
    """
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise ActionError(f"no lead {lead_id}")
    if lead.status not in OPEN_STATUSES:
        raise ActionError(f"lead {lead_id} is {lead.status}: only open leads can be edited")
    problem = handed_over_problem(lead)
    if problem:
        raise ActionError(problem)
    new_vehicle, vehicle_diff = vehicle_changes(lead.vehicle, vehicle or {})
    new_trade, trade_diff = vehicle_changes(lead.trade_in, trade_in or {})
    customer_values: dict[str, str | None] = {}
    for field in CUSTOMER_EDIT_FIELDS:
        if customer and field in customer:
            value = _clean(customer[field])
            if field == "email" and value is not None:
                value = matching.normalise_email(value)
                if value is None:
                    raise ActionError(f"email: {customer[field]!r} is not an e-mail address")
            limit = CUSTOMER_LIMITS.get(field, 255)
            if value is not None and len(value) > limit:
                raise ActionError(f"{field}: longer than {limit} characters")
            customer_values[field] = value
    record = session.get(Customer, lead.customer_id) if lead.customer_id else None
    customer_diff = [
        (field, _show(getattr(record, field, None)), _show(value))
        for field, value in customer_values.items()
        if _clean(getattr(record, field, None)) != value
    ]
    if customer_diff:
        if record is None:
            record = Customer()
            session.add(record)
        for field, value in customer_values.items():
            setattr(record, field, value)
        _customer_keys(record)
        session.flush()
        lead.customer_id = record.id
    if vehicle_diff:
        lead.vehicle = new_vehicle
    if trade_diff:
        lead.trade_in = new_trade or None
    changes = [
        phrase(code, field=field, old=old, new=new)
        for code, diff in (
            ("customer_changed", customer_diff),
            ("vehicle_changed", vehicle_diff),
            ("trade_in_changed", trade_diff),
        )
        for field, old, new in diff
    ]
    if not changes:
        return []
    lead.last_activity_at = now
    session.flush()
    log(session, lead_id, actor=actor, action="edited", what=changes, at=now)
    return changes
