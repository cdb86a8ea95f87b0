"""The customer file's writes: merge two customers, move a lead to another customer, and
decide a "please check" task (a mailed lead whose customer was only *similar* to a known one).

Pure service functions on a session (the web UI checks who may call them):
the caller commits.  Every change leaves a protocol line on each lead it
touches, so a lead's history says why its customer changed.

A merge is field by field (seed 004's duplicate check): for each field the
caller names which customer's value survives; all leads of the other
customer move to the survivor, and the other one stays as a row marked
``merged_into_id`` (old protocol lines name his number) that owns nothing and
is in no list.  Both rows are claimed with conditional UPDATEs in id order
before anything is read for the decision, so two merges racing over the same
customers (A into B and B into A, or both into a third) cannot both succeed
and never form a cycle: the loser finds his customer already merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailgate.models import Customer, Lead, ProtocolEntry
from mailgate.protocol import N_, phrase, register
from mailgate.protocol import row as protocol_row

from . import matching
from .edits import CUSTOMER_EDIT_FIELDS

# what a merge compares and lets the user choose, in the order of the form
MERGE_FIELDS = (*CUSTOMER_EDIT_FIELDS, "birth_date")

PHRASES = {
    "customer_merged": N_(
        "customer #{other} merged into customer #{customer} by {user}; "
        "values taken from #{other}: {fields}"
    ),
    "customer_relinked": N_("moved from customer #{previous} to customer #{customer} by {user}"),
    "customer_checked_new": N_(
        "checked by {user}: a new customer, not the same person as #{candidates}"
    ),
}
register(PHRASES)


class CustomerFileError(Exception):
    """A refused change; ``code`` says why (the web UI words it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class MergeResult:
    survivor_id: int
    merged_id: int
    moved_leads: int
    taken: tuple[str, ...]


def differing_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The fields of :data:`MERGE_FIELDS` where two customers' values differ (and ``b`` has one)."""
    return [f for f in MERGE_FIELDS if b.get(f) not in (None, "") and _differs(a.get(f), b.get(f))]


def _differs(a: Any, b: Any) -> bool:
    """Case and surrounding blanks do not make two values different."""
    return str(a or "").strip().lower() != str(b or "").strip().lower()


def _claim(session: Session, ids: Iterable[int]) -> set[int]:
    """Write-lock the customers (id order: no deadlock) that are not merged; return those."""
    claimed = set()
    for customer_id in sorted(set(ids)):
        result = session.execute(
            update(Customer)
            .where(Customer.id == customer_id, Customer.merged_into_id.is_(None))
            .values(merged_into_id=None)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.add(customer_id)
    return claimed


def merge_customers(
    session: Session,
    survivor_id: int,
    other_id: int,
    take: Iterable[str],
    *,
    actor: str,
    now: datetime,
    action: str = "customer",
) -> MergeResult:
    """Merge ``other_id`` into ``survivor_id``; ``take`` names the fields whose value comes
    from the other customer (every other field keeps the survivor's value)."""
    if survivor_id == other_id:
        raise CustomerFileError("same_customer")
    claimed = _claim(session, (survivor_id, other_id))
    if claimed != {survivor_id, other_id}:
        raise CustomerFileError("already_merged")
    survivor = session.get(Customer, survivor_id, populate_existing=True)
    other = session.get(Customer, other_id, populate_existing=True)
    if survivor is None or other is None:
        raise CustomerFileError("not_found")
    taken = tuple(f for f in MERGE_FIELDS if f in set(take))
    for name in taken:
        setattr(survivor, name, getattr(other, name))
    _keys(survivor)
    if survivor.check_candidates:  # a check about the other one is answered by the merge
        left = [c for c in survivor.check_candidates if c and c[0] != other_id]
        survivor.check_candidates = left or None
        survivor.check_since = survivor.check_since if left else None
    other.merged_into_id = survivor_id
    other.merged_at = now
    other.check_since = None
    other.check_candidates = None
    session.flush()
    moved = list(session.scalars(select(Lead.id).where(Lead.customer_id == other_id)))
    kept = list(session.scalars(select(Lead.id).where(Lead.customer_id == survivor_id)))
    session.execute(
        update(Lead)
        .where(Lead.customer_id == other_id)
        .values(customer_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    line = phrase(
        "customer_merged",
        other=other_id,
        customer=survivor_id,
        user=actor,
        fields=", ".join(taken) or "–",
    )
    _protocol(session, [*moved, *kept], now, actor, action, line)
    return MergeResult(survivor_id, other_id, len(moved), taken)


def relink_lead(
    session: Session, lead_id: int, customer_id: int, *, actor: str, now: datetime
) -> int | None:
    """Move one lead to another (not merged) customer; returns the previous customer id."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise CustomerFileError("not_found")
    if lead.customer_id == customer_id:
        raise CustomerFileError("same_customer")
    if _claim(session, (customer_id,)) != {customer_id}:
        raise CustomerFileError("already_merged")
    previous = lead.customer_id
    lead.customer_id = customer_id
    session.flush()
    line = phrase("customer_relinked", previous=previous or "–", customer=customer_id, user=actor)
    _protocol(session, [lead_id], now, actor, "customer", line)
    return previous


def decide_check(
    session: Session,
    customer_id: int,
    decision: str,
    *,
    candidate_id: int | None,
    take: Iterable[str] = (),
    actor: str,
    now: datetime,
) -> MergeResult | None:
    """The three-way duplicate decision for a customer made from a mailed lead.

    ``update``: he is the known customer ``candidate_id``, whose data takes the
    chosen fields of the mail's; ``keep``: he is that customer, whose data stays
    as it is; ``new``: a different person, the task is closed.  The first two
    are merges of the new customer into the known one.
    """
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merged_into_id is not None:
        raise CustomerFileError("not_found")
    if customer.check_since is None:
        raise CustomerFileError("no_check")
    if decision == "new":
        if _claim(session, (customer_id,)) != {customer_id}:
            raise CustomerFileError("already_merged")
        candidates = [str(c[0]) for c in customer.check_candidates or () if c]
        customer.check_since = None
        customer.check_candidates = None
        session.flush()
        leads = list(session.scalars(select(Lead.id).where(Lead.customer_id == customer_id)))
        line = phrase("customer_checked_new", user=actor, candidates=", #".join(candidates))
        _protocol(session, leads, now, actor, "customer", line)
        return None
    if decision not in ("update", "keep") or candidate_id is None:
        raise CustomerFileError("bad_decision")
    chosen = take if decision == "update" else ()
    return merge_customers(session, candidate_id, customer_id, chosen, actor=actor, now=now)


def mark_for_check(
    session: Session, customer_id: int, candidates: list[tuple[int, float]], now: datetime
) -> None:
    """Open a "please check" task on a customer just made from a mailed lead."""
    session.execute(
        update(Customer)
        .where(Customer.id == customer_id)
        .values(check_since=now, check_candidates=[[cid, round(s)] for cid, s in candidates])
        .execution_options(synchronize_session=False)
    )


def survivor_of(session: Session, customer_id: int) -> int | None:
    """The customer a merged one lives on in (following a chain of merges), else None."""
    seen: set[int] = set()
    current: int | None = customer_id
    while current is not None and current not in seen:
        seen.add(current)
        target = session.scalar(select(Customer.merged_into_id).where(Customer.id == current))
        if target is None:
            return current if current != customer_id else None
        current = target
    return None


def _keys(customer: Customer) -> None:
    customer.email = matching.normalise_email(customer.email) or customer.email
    customer.phone_e164 = matching.normalise_phone(customer.phone)
    customer.match_name = matching.name_key(customer.name, customer.first_name, customer.last_name)
    customer.match_street = matching.street_key(customer.street)


def _protocol(
    session: Session, lead_ids: Iterable[int], now: datetime, actor: str, action: str, line: Any
) -> None:
    rows = [
        protocol_row(lead_id, now, actor, action, [line]) for lead_id in dict.fromkeys(lead_ids)
    ]
    if rows:
        session.execute(insert(ProtocolEntry), rows)
