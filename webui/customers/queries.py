"""Reading the customer file: search, a customer's leads and messages, duplicates, open checks.

Every query takes the viewer's customer scope (:func:`..access.customer_scope`)
or lead scope (:func:`..access.lead_scope`), so nothing here can show a
customer or a lead the viewer could not open by its URL.  Merged customers
(``merged_into_id``) are in no list: they own no lead any more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from mailgate.distribution.customer_file import survivor_of
from mailgate.distribution.matching import name_key, normalise_email, normalise_phone
from mailgate.models import (
    Customer,
    InboundMail,
    Lead,
    LeadFollowup,
    LeadStatus,
    OutboxMail,
    User,
)
from mailgate.outbound.hygiene import CUSTOMER_PURPOSES

from ..access import Account, customer_scope, lead_scope
from ..leads.query import like_pattern

MAX_QUERY = 100
EXCERPT = 160  # characters of a message shown in the history
MAX_MESSAGES = 300
DIGITS = re.compile(r"[^0-9]")


def clean_query(raw: str | None) -> str:
    """One line, single spaces, at most :data:`MAX_QUERY` characters, no control characters."""
    text = "".join(c for c in (raw or "") if c.isprintable())
    return " ".join(text.split())[:MAX_QUERY]


def search_condition(
    query: str, region: str, dialect: str = "sqlite"
) -> ColumnElement[bool] | None:
    """Customers matching every word: name, e-mail, phone (as typed and E.164), postcode.

    A word of digits is a phone number (normalised with the dealer's region)
    or a postcode or a part of a phone number; the lead numbers a customer's
    leads carry (listing id, stock number, VIN, the source's number, the lead
    number) are found through :func:`lead_condition`.
    """
    words = query.lower().split()
    if not words:
        return None
    phone = normalise_phone(query, region) if re.fullmatch(r"\+?[\d\s/().-]{6,}", query) else None
    if phone:
        digits = DIGITS.sub("", query)
        return or_(
            Customer.phone_e164 == phone,
            Customer.phone.like(like_pattern(digits), escape="\\"),
            Customer.id.in_(lead_customers(query, region, dialect)),
        )
    conditions = []
    for word in words:
        pattern = like_pattern(word)
        options: list[ColumnElement[bool]] = [
            func.lower(Customer.name).like(pattern, escape="\\"),
            func.lower(Customer.email).like(pattern, escape="\\"),
            Customer.postcode.like(pattern, escape="\\"),
        ]
        folded = name_key(word)
        if folded:  # umlauts spelled out: "Froehlich" finds "Fröhlich" and back
            options.append(Customer.match_name.like(like_pattern(folded), escape="\\"))
        digits = DIGITS.sub("", word)
        if digits and len(digits) >= 3:
            options.append(Customer.phone_e164.like(like_pattern(digits), escape="\\"))
            options.append(Customer.phone.like(like_pattern(word), escape="\\"))
        conditions.append(or_(*options))
    email = normalise_email(query) if "@" in query else None
    found = and_(*conditions)
    if email:
        found = or_(found, Customer.email == email)
    if len(words) == 1:  # a single word may be a listing id, stock number, VIN or plate
        found = or_(found, Customer.id.in_(lead_customers(query, region, dialect)))
    return found


def lead_customers(query: str, region: str, dialect: str) -> Any:
    """Ids of customers with a lead whose search line (numbers, VIN, make…) matches."""
    from ..leads.query import search_condition as lead_search

    condition = lead_search(query, region, dialect)
    return select(Lead.customer_id).where(Lead.customer_id.is_not(None), condition)


def visible_customers(account: Account, session: Session) -> ColumnElement[bool]:
    return and_(customer_scope(account, session), Customer.merged_into_id.is_(None))


@dataclass(frozen=True)
class CustomerRow:
    id: int
    name: str
    email: str | None
    phone: str | None
    postcode: str | None
    city: str | None
    leads: int
    open_check: bool


def customer_rows(session: Session, ids: list[int], account: Account) -> list[CustomerRow]:
    """The list's rows for these customers, with the number of leads the viewer sees."""
    if not ids:
        return []
    counts = dict(
        session.execute(
            select(Lead.customer_id, func.count())
            .where(
                Lead.customer_id.in_(ids),
                Lead.status != LeadStatus.DELETED.value,
                lead_scope(account, session),
            )
            .group_by(Lead.customer_id)
        ).all()
    )
    found = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    return [
        CustomerRow(
            id=c.id,
            name=display_name(c),
            email=c.email,
            phone=c.phone,
            postcode=c.postcode,
            city=c.city,
            leads=int(counts.get(c.id, 0)),
            open_check=c.check_since is not None,
        )
        for i in ids
        if (c := found.get(i)) is not None
    ]


def display_name(customer: Customer) -> str:
    parts = [customer.first_name, customer.last_name]
    return customer.name or " ".join(p for p in parts if p) or customer.email or ""


@dataclass(frozen=True)
class LeadRow:
    id: int
    status: str
    source: str
    kind: str
    vehicle: dict[str, Any]
    assignee: str | None
    received_at: datetime


def leads_of(session: Session, customer_id: int, account: Account) -> list[LeadRow]:
    """The customer's leads the viewer may open, newest first."""
    rows = session.execute(
        select(Lead, User.name, User.email)
        .outerjoin(User, User.id == Lead.assignee_id)
        .where(Lead.customer_id == customer_id, lead_scope(account, session))
        .where(Lead.status != LeadStatus.DELETED.value)
        .order_by(Lead.received_at.desc(), Lead.id.desc())
    ).all()
    return [
        LeadRow(
            id=lead.id,
            status=lead.status,
            source=lead.source,
            kind=lead.kind,
            vehicle=dict(lead.vehicle or {}),
            assignee=(name or email) if (name or email) else None,
            received_at=lead.received_at,
        )
        for lead, name, email in rows
    ]


def hidden_leads(session: Session, customer_id: int, account: Account) -> int:
    """How many of his (not deleted) leads the viewer may not open (a colleague's)."""
    total = session.scalar(
        select(func.count())
        .select_from(Lead)
        .where(Lead.customer_id == customer_id, Lead.status != LeadStatus.DELETED.value)
    )
    seen = session.scalar(
        select(func.count())
        .select_from(Lead)
        .where(
            Lead.customer_id == customer_id,
            Lead.status != LeadStatus.DELETED.value,
            lead_scope(account, session),
        )
    )
    return int(total or 0) - int(seen or 0)


@dataclass(frozen=True)
class Message:
    at: datetime
    direction: str  # in | out
    sender: str
    subject: str
    excerpt: str
    lead_id: int


def excerpt(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1].rstrip() + "…"


def messages_of(session: Session, lead_ids: list[int], customer: Customer) -> list[Message]:
    """The conversation across the leads: the inquiries, his later mails, mails to him.

    Read-only and columns only (no raw bytes); the lead page has the full view.
    """
    if not lead_ids:
        return []
    out: list[Message] = []
    for lead in session.execute(
        select(Lead.id, Lead.received_at, Lead.subject, Lead.message, InboundMail.envelope_from)
        .outerjoin(InboundMail, InboundMail.id == Lead.inbound_id)
        .where(Lead.id.in_(lead_ids))
    ):
        sender = customer.email or lead.envelope_from or display_name(customer)
        out.append(
            Message(
                lead.received_at,
                "in",
                sender,
                lead.subject or "",
                excerpt(lead.message),
                lead.id,
            )
        )
    for f in session.execute(
        select(
            LeadFollowup.lead_id,
            LeadFollowup.received_at,
            LeadFollowup.subject,
            LeadFollowup.message,
            InboundMail.envelope_from,
        )
        .outerjoin(InboundMail, InboundMail.id == LeadFollowup.inbound_id)
        .where(LeadFollowup.lead_id.in_(lead_ids))
        .limit(MAX_MESSAGES)
    ):
        sender = f.envelope_from or customer.email or ""
        out.append(
            Message(f.received_at, "in", sender, f.subject or "", excerpt(f.message), f.lead_id)
        )
    for o in session.execute(
        select(
            OutboxMail.lead_id,
            OutboxMail.created_at,
            OutboxMail.sent_at,
            OutboxMail.subject,
            OutboxMail.mail_from,
        )
        .where(OutboxMail.lead_id.in_(lead_ids), OutboxMail.purpose.in_(CUSTOMER_PURPOSES))
        .limit(MAX_MESSAGES)
    ):  # mails to the customer only: staff notices are no part of his conversation
        when = o.sent_at or o.created_at
        out.append(Message(when, "out", o.mail_from, o.subject or "", "", o.lead_id))
    out.sort(key=lambda m: m.at, reverse=True)
    return out[:MAX_MESSAGES]


def vehicles_of(leads: list[LeadRow]) -> list[dict[str, Any]]:
    """The vehicles of interest across his leads, each once (make, model, listing id)."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for lead in leads:
        vehicle = {k: v for k, v in lead.vehicle.items() if v not in (None, "")}
        if not vehicle:
            continue
        key = tuple(str(vehicle.get(k) or "") for k in ("make", "model", "vin", "listing_id"))
        if key in seen:
            continue
        seen.add(key)
        out.append({**vehicle, "lead_id": lead.id})
    return out


def possible_duplicates(
    session: Session, customer: Customer, account: Account, limit: int = 10
) -> list[Customer]:
    """Other visible customers with the same e-mail, phone or name key: merge candidates."""
    keys: list[ColumnElement[bool]] = []
    if customer.email:
        keys.append(Customer.email == customer.email)
    if customer.phone_e164:
        keys.append(Customer.phone_e164 == customer.phone_e164)
    if customer.match_name:
        keys.append(Customer.match_name == customer.match_name)
    ids = [c[0] for c in customer.check_candidates or () if c]
    if ids:
        keys.append(Customer.id.in_(ids))
    if not keys:
        return []
    return list(
        session.scalars(
            select(Customer)
            .where(or_(*keys), Customer.id != customer.id, visible_customers(account, session))
            .order_by(Customer.id)
            .limit(limit)
        )
    )


def check_candidates(session: Session, customer: Customer, account: Account) -> list[Customer]:
    """The known customers a "please check" task names, those the viewer may see."""
    ids = [int(c[0]) for c in customer.check_candidates or () if c and str(c[0]).isdigit()]
    # a candidate merged since lives on in his survivor: the check names the survivor
    found = {survivor_of(session, i) or i for i in ids} - {customer.id}
    if not found:
        return []
    return list(
        session.scalars(
            select(Customer)
            .where(Customer.id.in_(found), visible_customers(account, session))
            .order_by(Customer.id)
        )
    )


def check_scores(session: Session, customer: Customer) -> dict[int, int]:
    """Name similarity per candidate (under his survivor's id if he was merged since)."""
    scores = {}
    for c in customer.check_candidates or ():
        if c and len(c) == 2 and str(c[0]).isdigit() and str(c[1]).isdigit():
            scores[survivor_of(session, int(c[0])) or int(c[0])] = int(c[1])
    return scores
