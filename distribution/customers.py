"""Customer matching I/O (the pipeline's ``match_customer`` stage calls this).

Finds a known customer by the exact keys of :mod:`.matching`, fills his empty
fields from the new inquiry (what is known is never overwritten), or creates
him.  It also tells distribution what the match means: an open lead to attach
the mail to, or the salesperson of the customer's last lead (a follow-up).

Only exact keys match (e-mail, E.164 phone, name key with postcode or street).
A name that is merely *similar* to a known customer's in the same postcode
(:func:`.matching.suggestions`) never decides: the mail gets a new customer
marked "please check" (``check_since``, ``check_candidates``), and a person
takes the three-way decision of seed 004 (update / keep / new) in the
customer file (:mod:`.customer_file`), as for a lead entered by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from mailgate.models import OPEN_STATUSES, Customer, Lead, LeadStatus, User
from mailgate.protocol import Phrase, phrase

from . import matching

if TYPE_CHECKING:
    from mailgate.batch import BatchContext

_CUSTOMER_INSERT = insert(Customer.__table__).returning(Customer.__table__.c.id)

CUSTOMER_FIELDS = (
    "salutation",
    "title",
    "name",
    "first_name",
    "last_name",
    "phone",
    "street",
    "postcode",
    "city",
    "country",
)


@dataclass
class CustomerMatch:
    """The customer row (values incl. ``id``) and what distribution should do with it."""

    customer: dict[str, Any]
    how: str | None = None  # "e-mail", "phone", "name and postcode", … (None: new)
    open_lead_id: int | None = None  # attach the mail to this lead instead of a new one
    owner: str | None = None  # e-mail of the salesperson of the customer's last lead
    suggestions: list[tuple[int, float]] = field(default_factory=list)

    def protocol(self) -> list[tuple[str, Phrase]]:
        entries = []
        if self.how:
            found = phrase("known_customer", customer=self.customer["id"], how=self.how)
            entries.append(("customer", found))
        for cid, score in self.suggestions:
            maybe = phrase("maybe_same_customer", customer=cid, score=round(score))
            entries.append(("customer", maybe))
        return entries


def match_customer(
    session: Session,
    data: Any,
    *,
    source: str,
    now: datetime,
    region: str = "DE",
    relay_domains: Iterable[str] = (),
    pool_user: str = "",
    batch: BatchContext | None = None,
    keys: tuple[str | None, str | None, str | None] | None = None,
) -> CustomerMatch:
    """Find (exact keys) or create the customer of a parsed inquiry.

    With a ``batch``, the exact look-ups read the batch's prefetched customers
    instead of querying (same keys, same lowest-id rule).  ``keys`` are
    :func:`lookup_keys` of ``data`` if the caller has them already (phone
    normalisation is costly).
    """
    table = Customer.__table__
    email, phone, name = keys or lookup_keys(data, region)
    relay = email is not None and matching.is_relay(email, relay_domains)
    street = matching.street_key(data.street)
    postcode = matching.postcode_key(data.postcode)
    first = _Finder(session, batch)
    row, how, open_lead = None, None, None
    if email and relay:
        open_lead = _relay_conversation(session, email, source)
        if open_lead is not None:
            found = session.execute(select(table).where(table.c.id == open_lead[1])).first()
            row = dict(found._mapping) if found is not None else None
            how = "relay address (same conversation)"
    elif email:
        row, how = first.by_email(email), "e-mail"
    if row is None and phone:
        row, how = first.by_phone(phone), "phone"
    if row is None and name and (postcode or street):
        row = first.by_name_and_address(name, postcode, street)
        how = "name and address"
    parsed = {k: getattr(data, k) for k in CUSTOMER_FIELDS}
    keys = {"phone_e164": phone, "match_name": name, "match_street": street}
    if postcode:
        parsed["postcode"] = postcode
    similar: list[tuple[int, float]] = []
    if row is None:
        if name and postcode:
            candidates = session.execute(
                select(table.c.id, table.c.match_name)
                .where(
                    table.c.postcode == postcode,
                    table.c.match_name.is_not(None),
                    table.c.merged_into_id.is_(None),
                )
                .limit(500)
            ).all()
            similar = matching.suggestions(name, [(c.id, c.match_name) for c in candidates])
        values = {"email": email, "created_at": now, **parsed, **keys}
        if similar:  # only similar to known customers: a person decides (customer file)
            values["check_since"] = now
            values["check_candidates"] = [[cid, round(score)] for cid, score in similar]
        values["id"] = session.execute(_CUSTOMER_INSERT, values).scalar_one()
        if batch is not None:
            batch.put_customer(values)
        return CustomerMatch(values, suggestions=similar)
    values = dict(row)
    missing = {k: v for k, v in {**parsed, **keys}.items() if v and not values.get(k)}
    if email and not values.get("email"):
        missing["email"] = email
    if missing:
        session.execute(update(table).where(table.c.id == values["id"]).values(**missing))
        values.update(missing)
        if batch is not None:
            batch.put_customer(values)
    result = CustomerMatch(values, how=how)
    if open_lead is not None:
        result.open_lead_id = open_lead[0]
    elif not relay:
        result.open_lead_id = _open_lead(session, values["id"])
    if result.open_lead_id is None:
        result.owner = _owner(session, values["id"], pool_user)
    return result


def lookup_keys(data: Any, region: str = "DE") -> tuple[str | None, str | None, str | None]:
    """(e-mail, E.164 phone, name key): what the exact look-ups search by (batch prefetch)."""
    return (
        matching.normalise_email(data.email),
        matching.normalise_phone(data.phone, region),
        matching.name_key(data.name, data.first_name, data.last_name),
    )


class _Finder:
    """The exact look-ups: a query each, or the batch's prefetched rows (same answers)."""

    def __init__(self, session: Session, batch: BatchContext | None) -> None:
        self.session = session
        self.batch = batch

    def by_email(self, email: str) -> dict[str, Any] | None:
        table = Customer.__table__
        return self._first(lambda: table.c.email == email, lambda row: row["email"] == email)

    def by_phone(self, phone: str) -> dict[str, Any] | None:
        table = Customer.__table__
        return self._first(
            lambda: table.c.phone_e164 == phone, lambda row: row["phone_e164"] == phone
        )

    def by_name_and_address(
        self, name: str, postcode: str | None, street: str | None
    ) -> dict[str, Any] | None:
        table = Customer.__table__

        def condition() -> Any:
            conditions = []
            if postcode:
                conditions.append(table.c.postcode == postcode)
            if street:
                conditions.append(table.c.match_street == street)
            return and_(table.c.match_name == name, or_(*conditions))

        def matches(row: Mapping[str, Any]) -> bool:
            return row["match_name"] == name and (
                bool(postcode and row["postcode"] == postcode)
                or bool(street and row["match_street"] == street)
            )

        return self._first(condition, matches)

    def _first(
        self, condition: Callable[[], Any], matches: Callable[[Mapping[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """``condition`` builds the SQL (only without a batch: building costs too)."""
        if self.batch is not None:  # a merged customer lives on in his survivor: never him
            return self.batch.first_customer(
                lambda row: row.get("merged_into_id") is None and matches(row)
            )
        table = Customer.__table__
        row = self.session.execute(
            select(table)
            .where(condition(), table.c.merged_into_id.is_(None))
            .order_by(table.c.id)
            .limit(1)
        ).first()
        return dict(row._mapping) if row is not None else None


def _relay_conversation(session: Session, email: str, source: str) -> tuple[int, int] | None:
    """(lead id, customer id) of the open lead of this relay conversation."""
    row = session.execute(
        select(Lead.id, Lead.customer_id)
        .join(Customer, Customer.id == Lead.customer_id)
        .where(Customer.email == email, Lead.source == source, Lead.status.in_(OPEN_STATUSES))
        .order_by(Lead.id.desc())
        .limit(1)
    ).first()
    return (row.id, row.customer_id) if row else None


def _open_lead(session: Session, customer_id: int) -> int | None:
    return session.scalar(
        select(Lead.id)
        .where(Lead.customer_id == customer_id, Lead.status.in_(OPEN_STATUSES))
        .order_by(Lead.id.desc())
        .limit(1)
    )


def _owner(session: Session, customer_id: int, pool_user: str) -> str | None:
    """The salesperson of the customer's most recent lead (not the pool account)."""
    query = (
        select(User.email)
        .join(Lead, Lead.assignee_id == User.id)
        .where(Lead.customer_id == customer_id, Lead.status != LeadStatus.DELETED.value)
        .order_by(Lead.received_at.desc(), Lead.id.desc())
        .limit(1)
    )
    if pool_user:
        query = query.where(User.email != pool_user.lower())
    return session.scalar(query)


def customer_context(customer: Mapping[str, Any]) -> dict[str, str]:
    """The customer fields mail templates show."""
    return {
        k: str(customer.get(k) or "")
        for k in ("name", "email", "phone", "street", "postcode", "city")
    }
