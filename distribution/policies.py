"""Pure assignment policies: users and lead facts in, a decision plus its reason out.

No database, no clock: the service passes the day (in the dealer's time zone)
and the rotation pointers it read, and writes back the pointer the decision
moved.  The dry run (``mailgate distribution simulate``) calls the same
:func:`decide`, which is why it tells the truth.

Rotation rule (documented in README "Distribution"): every rotation keeps a
*pointer*, the id of the user whose turn was taken last.  The next lead goes to
the first user after the pointer (in user-id order, wrapping around) who is a
member of the rotation and present on the lead's day.  Absent users are simply
passed over; nothing is owed to them.  So within one round (one pass of the
pointer) each present member gets exactly one lead, and a user back from
absence rejoins at his place in the circle: no catch-up burst, and the spread
between any two users present over a period stays at most one.

Fallback chain: regular assignment (rotation, or a known customer's
salesperson) -> substitute (a chain, stopping at the first present user and
never looping) -> fallback user -> admin account.  Every hop is explained in
the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from mailgate.protocol import Phrase, english, phrase

if TYPE_CHECKING:
    from .categories import Category

CATEGORIES = ("sales", "service", "financing")
PERMISSIONS = ("all", "own_location", "none")
GROUP_MATCH_KEYS = ("source", "kind", "make", "location", "category")


def category_of(kind: str) -> str:
    """The built-in permission category of a lead kind: the dealership's departments.

    The fallback when the dealer defines no ``[[categories]]`` or none fits
    (:mod:`mailgate.distribution.categories`)."""
    if kind == "service":
        return "service"
    if kind == "financing":
        return "financing"
    return "sales"


@dataclass(frozen=True)
class Absence:
    start: date
    until: date  # inclusive
    substitute: str = ""


@dataclass(frozen=True)
class Candidate:
    """A user as distribution sees him."""

    id: int
    email: str
    name: str = ""
    role: str = "salesperson"
    active: bool = True
    receives_leads: bool = True
    can_be_assigned: bool = True
    groups: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    absences: tuple[Absence, ...] = ()
    permissions: tuple[tuple[str, str], ...] = ()  # (category, level); missing = "all"

    def absence_on(self, day: date) -> Absence | None:
        return next((a for a in self.absences if a.start <= day <= a.until), None)

    def permission(self, category: str) -> str:
        return dict(self.permissions).get(category, "all")


@dataclass(frozen=True)
class GroupRule:
    name: str
    match: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class LeadFacts:
    """What routing looks at; ``location`` is the mailbox's or the vehicle's."""

    source: str = "unknown"
    kind: str = "inquiry"
    make: str | None = None
    location: str | None = None
    categories: tuple[Category, ...] = ()  # the dealer's [[categories]], first match wins

    @property
    def category(self) -> str:
        from .categories import categorise

        return categorise(self.source, self.kind, self.categories)

    def value(self, key: str) -> str | None:
        return self.category if key == "category" else getattr(self, key)


@dataclass(frozen=True)
class Rules:
    """The distribution settings a decision depends on."""

    mode: str = "rolling"  # rolling | pool | groups
    fallback_user: str = ""
    pool_user: str = ""
    admin_address: str = ""
    groups: tuple[GroupRule, ...] = ()
    distribute_followups_normally: bool = False


@dataclass(frozen=True)
class Decision:
    assignee: str | None  # e-mail of the owner (the pool account for pool leads)
    steps: tuple[Phrase, ...]  # every hop and the final why, as protocol phrases
    rotation: str | None = None  # rotation whose pointer moves ...
    pointer: int | None = None  # ... to this user id
    pool: bool = False

    @property
    def reason(self) -> str:
        """The steps in English, joined by arrows (dry run, logs)."""
        return " → ".join(english([step]) for step in self.steps)


def may_see(user: Candidate, category: str, location: str | None) -> bool:
    """Category permission: all / own location / none."""
    level = user.permission(category)
    if level == "all":
        return True
    if level == "own_location":
        return location is not None and location in user.locations
    return False


def match_group(groups: Sequence[GroupRule], facts: LeadFacts) -> GroupRule | None:
    """The first rule whose every key matches (glob patterns, case-insensitive)."""
    for rule in groups:
        if all(_matches(facts.value(key), patterns) for key, patterns in rule.match):
            return rule
    return None


def _matches(value: str | None, patterns: Sequence[str]) -> bool:
    if value is None:
        return False
    return any(fnmatchcase(value.lower(), p.lower()) for p in patterns)


def rotation_order(members: Sequence[Candidate], pointer: int | None) -> list[Candidate]:
    """Members in turn order: those after the pointer first, then wrap around."""
    ordered = sorted(members, key=lambda m: m.id)
    if pointer is None:
        return ordered
    return [m for m in ordered if m.id > pointer] + [m for m in ordered if m.id <= pointer]


def _absent(code: str, user: Candidate, absence: Absence, **more: str) -> Phrase:
    return phrase(code, user=user.email, until_on=absence.until, **more)


def follow_substitutes(
    start: Candidate, by_email: Mapping[str, Candidate], day: date
) -> tuple[Candidate | None, list[Phrase]]:
    """Walk the substitute chain from an absent user to the first present one.

    Stops at a missing, inactive or unassignable substitute and at a loop
    (a user met twice); each step is explained.
    """
    hops: list[Phrase] = []
    seen = {start.email}
    current = start
    while True:
        absence = current.absence_on(day)
        if absence is None:
            return current, hops
        sub_email = absence.substitute.lower()
        if not sub_email:
            hops.append(_absent("absent_no_substitute", current, absence))
            return None, hops
        substitute = by_email.get(sub_email)
        if substitute is None or not substitute.active or not substitute.can_be_assigned:
            hops.append(
                _absent("absent_substitute_unavailable", current, absence, substitute=sub_email)
            )
            return None, hops
        if sub_email in seen:
            hops.append(_absent("absent_substitute_loop", current, absence, substitute=sub_email))
            return None, hops
        hops.append(_absent("absent_substitute", current, absence, substitute=sub_email))
        seen.add(sub_email)
        current = substitute


def decide(
    users: Sequence[Candidate],
    rules: Rules,
    facts: LeadFacts,
    day: date,
    pointers: Mapping[str, int],
    *,
    owner: str | None = None,
) -> Decision:
    """Who gets this lead, and why.

    ``owner`` is the salesperson of a known customer whose follow-up this is;
    it bypasses the rotation unless *distribute follow-ups normally* is on.
    """
    by_email = {u.email.lower(): u for u in users}
    hops: list[Phrase] = []
    if owner and not rules.distribute_followups_normally:
        known = by_email.get(owner.lower())
        if known is not None and known.active and known.can_be_assigned:
            chosen, chain = follow_substitutes(known, by_email, day)
            hops += chain
            if chosen is not None:
                return _done(chosen.email, hops, phrase("followup_owner"))
            return _fallback(by_email, rules, day, hops)
        hops.append(phrase("followup_owner_gone", user=owner))
    if rules.mode == "pool":
        return _pool(users, by_email, rules, facts, day, pointers, hops)
    key, label, members = "rolling", phrase("rolling"), _receivers(users, facts)
    if rules.mode == "groups":
        rule = match_group(rules.groups, facts)
        if rule is None:
            hops.append(
                phrase(
                    "no_group_matches",
                    source=facts.source,
                    kind=facts.kind,
                    make=facts.make or "-",
                    location=facts.location or "-",
                )
            )
            return _fallback(by_email, rules, day, hops)
        key, label = f"group:{rule.name}", phrase("group", group=rule.name)
        members = [m for m in members if rule.name in m.groups]
    if not members:
        hops.append(phrase("nobody_receives", rotation=[label], category=facts.category))
        return _fallback(by_email, rules, day, hops)
    return _rotate(members, key, label, by_email, rules, day, pointers, hops)


def _receivers(users: Sequence[Candidate], facts: LeadFacts) -> list[Candidate]:
    return [
        u
        for u in users
        if u.active and u.receives_leads and may_see(u, facts.category, facts.location)
    ]


def _rotate(
    members: Sequence[Candidate],
    key: str,
    label: Phrase,
    by_email: Mapping[str, Candidate],
    rules: Rules,
    day: date,
    pointers: Mapping[str, int],
    hops: list[Phrase],
) -> Decision:
    order = rotation_order(members, pointers.get(key))
    skipped: list[Phrase] = []
    for member in order:
        absence = member.absence_on(day)
        if absence is None:
            why = (
                phrase("next_in_turn_passing", rotation=[label], skipped=skipped)
                if skipped
                else phrase("next_in_turn", rotation=[label])
            )
            return _done(member.email, hops, why, rotation=key, pointer=member.id)
        skipped.append(_absent("absent", member, absence))
    # Everyone is absent: the lead belongs to whoever's turn it is, so his substitute.
    first = order[0]
    hops.append(phrase("everyone_absent", rotation=[label], user=first.email))
    chosen, chain = follow_substitutes(first, by_email, day)
    hops += chain
    if chosen is not None:
        return _done(chosen.email, hops, phrase("substitute"), rotation=key, pointer=first.id)
    decision = _fallback(by_email, rules, day, hops)
    return Decision(decision.assignee, decision.steps, key, first.id, decision.pool)


def _pool(
    users: Sequence[Candidate],
    by_email: Mapping[str, Candidate],
    rules: Rules,
    facts: LeadFacts,
    day: date,
    pointers: Mapping[str, int],
    hops: list[Phrase],
) -> Decision:
    """All leads go to the pool account, and (as in the reference product) rotate
    with users who still have *receives leads* on; the settings warn about that."""
    pool = by_email.get(rules.pool_user.lower()) if rules.pool_user else None
    if pool is None or not pool.active:
        hops.append(
            phrase("pool_unavailable", user=rules.pool_user)
            if rules.pool_user
            else phrase("pool_not_configured")
        )
        return _fallback(by_email, rules, day, hops)
    others = [m for m in _receivers(users, facts) if m.id != pool.id]
    order = rotation_order([pool, *others], pointers.get("pool"))
    for member in order:
        if member.id == pool.id:
            return Decision(pool.email, (*hops, phrase("pool_mode")), "pool", pool.id, pool=True)
        if member.absence_on(day) is None:
            why = phrase("pool_rotating_user")
            return _done(member.email, hops, why, rotation="pool", pointer=member.id)
    raise AssertionError("the pool account is always in its own rotation")


def _fallback(
    by_email: Mapping[str, Candidate], rules: Rules, day: date, hops: list[Phrase]
) -> Decision:
    fallback = by_email.get(rules.fallback_user.lower()) if rules.fallback_user else None
    if fallback is not None and fallback.active:
        absence = fallback.absence_on(day)
        if absence is None:
            return _done(fallback.email, hops, phrase("fallback_user"))
        hops.append(_absent("fallback_absent", fallback, absence))
    elif rules.fallback_user:
        hops.append(phrase("fallback_inactive", user=rules.fallback_user))
    else:
        hops.append(phrase("no_fallback"))
    admin = by_email.get(rules.admin_address.lower()) if rules.admin_address else None
    if admin is None or not admin.active:
        admin = next((u for u in by_email.values() if u.role == "admin" and u.active), None)
    if admin is not None:
        # The admin account is the last resort and takes the lead even when absent.
        return _done(admin.email, hops, phrase("admin_account"))
    return Decision(None, (*hops, phrase("nobody_can_take")))


def _done(
    email: str,
    hops: Sequence[Phrase],
    why: Phrase,
    *,
    rotation: str | None = None,
    pointer: int | None = None,
) -> Decision:
    return Decision(email, (*hops, why), rotation, pointer)
