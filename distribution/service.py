"""Distribution I/O: users and rotation state from the DB, the pure policy decides.

The rotation pointers live in one ``distribution_state`` row, changed by
compare-and-set on its ``version``: read pointers, decide, then ``UPDATE ...
WHERE version = <read>``.  If another worker moved the rotation in between, the
UPDATE matches nothing and we decide again on fresh pointers.  On PostgreSQL
(READ COMMITTED) a concurrent, uncommitted move makes our UPDATE wait for it
and then miss; on SQLite writers are serialised by ``BEGIN IMMEDIATE`` anyway.
Either way no turn is handed out twice and none is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailgate.dealer_settings import DealerConfig
from mailgate.models import DistributionState, User, utcnow
from mailgate.protocol import Phrase, phrase

from .categories import dealer_categories
from .policies import (
    Absence,
    Candidate,
    Decision,
    GroupRule,
    LeadFacts,
    Rules,
    decide,
)

if TYPE_CHECKING:
    from mailgate.batch import BatchContext

ROTATION = "rotation"
MAX_CAS_ATTEMPTS = 100  # each miss means another worker made progress
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def to_candidate(user: User) -> Candidate:
    absences = tuple(
        Absence(
            date.fromisoformat(a["from"]),
            date.fromisoformat(a["until"]),
            (a.get("substitute") or "").lower(),
        )
        for a in user.absences or ()
    )
    return Candidate(
        id=user.id,
        email=user.email.lower(),
        name=user.name,
        role=user.role,
        active=user.active,
        receives_leads=user.receives_leads,
        can_be_assigned=user.can_be_assigned,
        groups=tuple(user.groups or ()),
        locations=tuple(user.locations or ()),
        absences=absences,
        permissions=tuple(sorted((user.permissions or {}).items())),
    )


def rules_of(dealer: DealerConfig) -> Rules:
    dist = dealer.document["distribution"]
    groups = tuple(
        GroupRule(g["name"], tuple((k, tuple(v)) for k, v in g["match"].items()))
        for g in dealer.document["groups"]
    )
    return Rules(
        mode=dist["mode"],
        fallback_user=dist["fallback_user"].lower(),
        pool_user=dist["pool_user"].lower(),
        admin_address=dealer.admin_address.lower(),
        groups=groups,
        distribute_followups_normally=dist["distribute_followups_normally"],
    )


USERS_KEY = "distribution_users"  # session.info slot; the worker shares one read per claim


def load_users(session: Session) -> tuple[list[User], list[Candidate]]:
    """All users and their policy view, read from the database."""
    users = list(session.scalars(select(User).order_by(User.id)))
    return users, [to_candidate(u) for u in users]


def users_of(session: Session) -> tuple[list[User], list[Candidate]]:
    """All users, read once per session (or given to it by the worker): they change rarely."""
    cached = session.info.get(USERS_KEY)
    if cached is None:
        cached = session.info[USERS_KEY] = load_users(session)
    return cached


def local_day(now: datetime, dealer: DealerConfig) -> date:
    """Absences are calendar days of the dealership."""
    return now.astimezone(dealer.timezone).date()


def receiving_location(
    dealer: DealerConfig, envelope_to: Sequence[str], mailbox: str | None
) -> str | None:
    """The location of the mailbox the mail came in through (IMAP account or address)."""
    if mailbox:
        for account in dealer.document["imap"]:
            name = account["name"]
            if account["location"] and (mailbox == name or mailbox.startswith(name + "/")):
                return str(account["location"])
    plain = set()
    for rcpt in envelope_to:
        local, _, domain = rcpt.lower().strip("<>").rpartition("@")
        plain.add(f"{local.split('+')[0]}@{domain}")
    for location, addresses in dealer.document["distribution"]["locations"].items():
        if plain & {a.lower() for a in addresses}:
            return str(location)
    return None


def lead_facts(
    dealer: DealerConfig,
    lead: dict[str, Any],
    envelope_to: Sequence[str] = (),
    mailbox: str | None = None,
) -> tuple[LeadFacts, Phrase | None]:
    """Routing facts of a lead, and a protocol note when the vehicle location was wanted but
    unknown."""
    vehicle = lead.get("vehicle") or {}
    location = receiving_location(dealer, envelope_to, mailbox)
    note = None
    if dealer.document["distribution"]["use_vehicle_location"]:
        if vehicle.get("location"):
            location = str(vehicle["location"])
        else:
            note = phrase("location_unknown", location=location or "–")
    facts = LeadFacts(
        source=lead.get("source") or "unknown",
        kind=lead.get("kind") or "inquiry",
        make=vehicle.get("make"),
        location=location,
        categories=dealer_categories(dealer.document),
    )
    return facts, note


def _state(session: Session) -> tuple[int, dict[str, int]]:
    row = session.execute(
        select(DistributionState.version, DistributionState.pointers).where(
            DistributionState.name == ROTATION
        )
    ).first()
    if row is None:
        dialect = session.get_bind().dialect.name
        session.execute(
            _INSERTS[dialect](DistributionState)
            .values(name=ROTATION, pointers={}, version=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return _state(session)
    return row.version, dict(row.pointers or {})


def peek_pointers(session: Session) -> dict[str, int]:
    """The rotation pointers, read only (for the dry run)."""
    pointers = session.scalar(
        select(DistributionState.pointers).where(DistributionState.name == ROTATION)
    )
    return dict(pointers or {})


_STATE = DistributionState.__table__
# Built once: a new UPDATE with a JSON value per lead cost more to build than to run.
_MOVE = (
    update(_STATE)
    .where(_STATE.c.name == ROTATION, _STATE.c.version == bindparam("read_version"))
    .values(
        pointers=bindparam("new_pointers"),
        version=bindparam("new_version"),
        updated_at=bindparam("moved_at"),
    )
)


def _move(session: Session, version: int, pointers: dict[str, int], decision: Decision) -> bool:
    assert decision.rotation is not None and decision.pointer is not None
    moved = session.execute(
        _MOVE,
        {
            "read_version": version,
            "new_pointers": {**pointers, decision.rotation: decision.pointer},
            "new_version": version + 1,
            "moved_at": utcnow(),
        },
    )
    return moved.rowcount == 1


def assign(
    session: Session,
    dealer: DealerConfig,
    facts: LeadFacts | None = None,
    *,
    now: datetime | None = None,
    owner: str | None = None,
    batch: BatchContext | None = None,
) -> tuple[User | None, Decision]:
    """Decide who gets a lead and move the rotation (compare-and-set); no commit.

    With a ``batch``, the rotation state this transaction last saw (or moved
    to) is used instead of reading it again; the compare-and-set still guards
    it, and a miss reads it afresh.
    """
    facts = facts or LeadFacts()
    users, candidates = users_of(session)
    rules, day = rules_of(dealer), local_day(now or utcnow(), dealer)
    for _ in range(MAX_CAS_ATTEMPTS):
        known = batch.rotation_state() if batch is not None else None
        version, pointers = known or _state(session)
        decision = decide(candidates, rules, facts, day, pointers, owner=owner)
        if decision.rotation is None:
            if batch is not None and known is None:
                batch.set_rotation(version, pointers)
            break
        if _move(session, version, pointers, decision):
            if batch is not None:
                assert decision.pointer is not None
                batch.set_rotation(version + 1, {**pointers, decision.rotation: decision.pointer})
            break
        if batch is not None:
            batch.forget_rotation()
    else:
        raise RuntimeError("the rotation state kept changing; giving up on this lead")
    chosen = next((u for u in users if u.email.lower() == decision.assignee), None)
    return chosen, decision


def simulate(
    session: Session, dealer: DealerConfig, count: int, day: date, facts: LeadFacts
) -> list[Decision]:
    """Who would get the next ``count`` leads: the real policy on a copy of the pointers."""
    users = list(session.scalars(select(User).order_by(User.id)))
    candidates = [to_candidate(u) for u in users]
    rules, pointers = rules_of(dealer), peek_pointers(session)
    decisions = []
    for _ in range(count):
        decision = decide(candidates, rules, facts, day, pointers)
        decisions.append(decision)
        if decision.rotation is not None and decision.pointer is not None:
            pointers[decision.rotation] = decision.pointer
    return decisions
