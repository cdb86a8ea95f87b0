"""Leads typed in by hand (walk-in, phone call; seed 004), and the duplicate check before.

A manual lead runs through the same stages as a mailed one — distribution,
escalation times, notification (:mod:`mailgate.pipeline`) — except that the
customer is not matched automatically: the user has seen the possible
duplicates (:func:`possible_duplicates`) and chose to create a new customer,
keep an existing one as it is, or update it with the fields they ticked.
That choice is written to the protocol.  No commit: the caller's transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.escalation.actions import set_qualification
from mailgate.models import Customer, LeadStatus, User
from mailgate.pipeline import Job, distribute, notify, schedule
from mailgate.protocol import Phrase, phrase

from . import matching
from .actions import ActionError
from .categories import categorise, dealer_categories
from .customers import CustomerMatch, _Finder, _owner
from .edits import CUSTOMER_EDIT_FIELDS, CUSTOMER_LIMITS, _customer_keys, vehicle_changes

MANUAL_FIELDS = (*CUSTOMER_EDIT_FIELDS, "birth_date")  # what the duplicate view compares
USAGES = ("purchase", "use", "financing")
INTERESTS = ("dealer_contact", "brochure", "test_drive", "offer", "purchase", "accessories")
KINDS = ("inquiry", "test_drive", "trade_in", "financing", "service", "other")
CHOICES = ("new", "keep", "update")


@dataclass(frozen=True)
class ManualLead:
    """What the form collected (already checked for form and length by the web UI)."""

    customer: Mapping[str, Any]  # MANUAL_FIELDS; birth_date a date or None
    origin: str  # becomes the lead's source ("Walk-in", "Autoshow")
    origin_detail: str = ""  # becomes the campaign ("Autoshow 2026")
    kind: str = "inquiry"
    vehicle: Mapping[str, Any] = field(default_factory=dict)  # interest: make, model(s), price
    current_vehicle: Mapping[str, Any] = field(default_factory=dict)  # kept as the trade-in
    usage: str | None = None  # next vehicle: purchase / use / financing
    interests: tuple[str, ...] = ()
    remark: str = ""
    qualification: str | None = None
    # imported from a file (:mod:`.lead_import`): the source's own id for the lead, which
    # makes importing the same file twice harmless, and the file's name for the protocol
    external_id: str = ""
    imported_from: str = ""


@dataclass(frozen=True)
class CustomerChoice:
    action: str  # new | keep | update
    customer_id: int | None = None
    take: frozenset[str] = frozenset()  # the fields to take over (update)


@dataclass(frozen=True)
class Duplicate:
    customer: dict[str, Any]
    how: str  # "e-mail", "phone", "name and address", "similar name"


def possible_duplicates(
    session: Session, data: Mapping[str, Any], region: str = "DE"
) -> list[Duplicate]:
    """Existing customers who may be this person: exact keys first, then similar names."""
    finder = _Finder(session, None)
    email = matching.normalise_email(data.get("email"))
    phone = matching.normalise_phone(data.get("phone"), region)
    name = matching.name_key(data.get("name"), data.get("first_name"), data.get("last_name"))
    postcode = matching.postcode_key(data.get("postcode"))
    street = matching.street_key(data.get("street"))
    found: dict[int, Duplicate] = {}
    for how, row in (
        ("e-mail", finder.by_email(email) if email else None),
        ("phone", finder.by_phone(phone) if phone else None),
        ("name and address", finder.by_name_and_address(name, postcode, street) if name else None),
    ):
        if row is not None and row["id"] not in found:
            found[row["id"]] = Duplicate(row, how)
    if name and postcode:
        table = Customer.__table__
        nearby = session.execute(
            select(table.c.id, table.c.match_name)
            .where(table.c.postcode == postcode, table.c.match_name.is_not(None))
            .limit(500)
        ).all()
        for cid, _score in matching.suggestions(name, [(c.id, c.match_name) for c in nearby]):
            if cid not in found:
                row = session.execute(select(table).where(table.c.id == cid)).first()
                if row is not None:
                    found[cid] = Duplicate(dict(row._mapping), "similar name")
    return list(found.values())


def create_manual_lead(
    session: Session,
    dealer: DealerConfig,
    lead: ManualLead,
    choice: CustomerChoice,
    *,
    actor: str,
    now: datetime,
    keep: bool = False,
) -> int:
    """Create the lead; ``keep``: the user who entered it keeps it instead of distribution."""
    _check(lead, choice)
    customer, what = _customer(session, lead.customer, choice, now)
    job = Job(inbound_id=0, raw=b"", envelope_from=None, received_at=now, dealer=dealer, now=now)
    job.session = session
    job.acknowledge = False
    job.customer = customer
    job.match = CustomerMatch(customer, how=None)
    if choice.action != "new":  # his salesperson takes a known customer's lead
        pool_user = dealer.document["distribution"]["pool_user"]
        job.match.owner = _owner(session, customer["id"], pool_user)
    job.lead = _lead_values(lead, customer["id"], now)
    if lead.imported_from:
        job.protocol.append(
            ("received", phrase("imported_by", user=actor, file=lead.imported_from))
        )
    else:
        job.protocol.append(("received", phrase("created_by_hand", user=actor, source=lead.origin)))
    job.protocol.append(("customer", what))
    creator = session.scalar(select(User).where(User.email == actor, User.active))
    if keep and creator is not None and creator.can_be_assigned:
        job.lead["category"] = categorise(
            job.lead.get("source") or "", lead.kind, dealer_categories(dealer.document)
        )
        job.lead["assignee_id"] = creator.id
        job.lead["status"] = LeadStatus.ASSIGNED.value
        job.assignee = creator
        job.protocol.append(("assigned", phrase("kept_by_creator", user=creator.email)))
    else:
        distribute(job)
    schedule(job)
    notify(job)
    assert job.lead_id is not None
    if lead.qualification:  # hot / warm / cold set a processing target, junk never escalates
        set_qualification(session, dealer, job.lead_id, actor, now, lead.qualification)
    return job.lead_id


def _check(lead: ManualLead, choice: CustomerChoice) -> None:
    if not lead.origin.strip():
        raise ActionError("a manual lead needs an origin")
    if lead.kind not in KINDS:
        raise ActionError(f"kind is one of {', '.join(KINDS)}")
    if lead.usage is not None and lead.usage not in USAGES:
        raise ActionError(f"usage is one of {', '.join(USAGES)}")
    unknown = set(lead.interests) - set(INTERESTS)
    if unknown:
        raise ActionError(f"unknown interests: {', '.join(sorted(unknown))}")
    if choice.action not in CHOICES:
        raise ActionError(f"the customer choice is one of {', '.join(CHOICES)}")
    if choice.action != "new" and choice.customer_id is None:
        raise ActionError("keeping or updating a customer needs the customer")
    contact = [lead.customer.get(k) for k in ("email", "phone", "last_name", "name")]
    if choice.action == "new" and not any(contact):
        raise ActionError("a new customer needs a name, an e-mail address or a phone number")


def _customer(
    session: Session, data: Mapping[str, Any], choice: CustomerChoice, now: datetime
) -> tuple[dict[str, Any], Phrase]:
    values = _clean_customer(data)
    if choice.action == "new":
        record = Customer(created_at=now, **values)
        session.add(record)
        what = None
    else:
        record = session.get(Customer, choice.customer_id)
        if record is None:
            raise ActionError(f"no customer {choice.customer_id}")
        taken = [f for f in MANUAL_FIELDS if f in choice.take and f in values]
        if choice.action == "update":
            for name in taken:
                setattr(record, name, values[name])
            what = phrase("customer_updated", customer=record.id, fields=", ".join(taken) or "–")
        else:
            what = phrase("customer_kept", customer=record.id)
    _customer_keys(record)
    session.flush()
    if what is None:
        what = phrase("customer_new", customer=record.id)
    row = session.execute(
        select(Customer.__table__).where(Customer.__table__.c.id == record.id)
    ).one()
    return dict(row._mapping), what


def _clean_customer(data: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in MANUAL_FIELDS:
        value = data.get(name)
        if isinstance(value, str):
            value = " ".join(value.split()) or None
        if name == "email" and value is not None:
            email = matching.normalise_email(value)
            if email is None:
                raise ActionError(f"email: {value!r} is not an e-mail address")
            value = email
        if name == "birth_date" and value is not None and not isinstance(value, date):
            raise ActionError("birth_date: not a date")
        limit = CUSTOMER_LIMITS.get(name, 255)
        if isinstance(value, str) and len(value) > limit:
            raise ActionError(f"{name}: longer than {limit} characters")
        values[name] = value
    if not values.get("name"):
        parts = [values.get("first_name"), values.get("last_name")]
        values["name"] = " ".join(p for p in parts if p) or None
    return values


def import_key(origin: str, external_id: str) -> str:
    """The dedupe key of an imported lead: the same id from the same origin is one lead."""
    digest = hashlib.sha256(f"{origin.strip().lower()}\x00{external_id.strip()}".encode())
    return "import:" + digest.hexdigest()[:56]


def _lead_values(lead: ManualLead, customer_id: int, now: datetime) -> dict[str, Any]:
    return {
        "inbound_id": None,
        "dedupe_key": import_key(lead.origin, lead.external_id)
        if lead.external_id
        else "manual:" + secrets.token_hex(16),
        "customer_id": customer_id,
        "source": lead.origin.strip()[:64],
        "campaign": lead.origin_detail.strip()[:128] or None,
        "kind": lead.kind,
        "parser": "import" if lead.imported_from else "manual",
        "source_ref": lead.external_id or None,
        "confidence": 1.0,
        "subject": None,
        "message": lead.remark.strip() or None,
        "vehicle": vehicle_changes({}, lead.vehicle)[0],  # numbers in German notation too
        "trade_in": vehicle_changes({}, lead.current_vehicle)[0] or None,
        "warnings": [],
        "status": LeadStatus.NEW.value,
        "received_at": now,
        "created_at": now,
        "last_activity_at": now,
        "reply_token": secrets.token_urlsafe(16),
        "extras": {"usage": lead.usage, "interests": sorted(lead.interests)},
    }
