"""Pure distribution policies: table-driven cases plus properties over arrivals and absences."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.distribution.policies import (
    Absence,
    Candidate,
    GroupRule,
    LeadFacts,
    Rules,
    category_of,
    decide,
    follow_substitutes,
    match_group,
    may_see,
    rotation_order,
)
from mailgate.protocol import english

DAY = date(2026, 12, 2)
AWAY = Absence(date(2026, 12, 1), date(2026, 12, 5))


def away(substitute: str = "") -> tuple[Absence, ...]:
    return (Absence(AWAY.start, AWAY.until, substitute),)


ANNA = Candidate(1, "anna@autohaus.example", groups=("neuwagen",), locations=("muenchen",))
BEN = Candidate(2, "ben@autohaus.example", groups=("neuwagen", "service"))
CARL = Candidate(3, "carl@autohaus.example", groups=("gebraucht",), locations=("augsburg",))
CHEF = Candidate(4, "chef@autohaus.example", role="supervisor", receives_leads=False)
ADMIN = Candidate(5, "admin@autohaus.example", role="admin", receives_leads=False)
POOL = Candidate(6, "pool@autohaus.example", receives_leads=False, can_be_assigned=False)
RULES = Rules(fallback_user=CHEF.email, admin_address=ADMIN.email)
GROUPS = (
    GroupRule("neuwagen", (("source", ("oem:*",)), ("kind", ("test_drive", "inquiry")))),
    GroupRule("service", (("category", ("service",)),)),
    GroupRule("gebraucht", (("location", ("augsburg",)),)),
)


def users(*changed: Candidate) -> list[Candidate]:
    by_id = {u.id: u for u in (ANNA, BEN, CARL, CHEF, ADMIN, POOL)}
    by_id.update({u.id: u for u in changed})
    return list(by_id.values())


def absent(user: Candidate, substitute: str = "") -> Candidate:
    return Candidate(**{**user.__dict__, "absences": away(substitute)})


@pytest.mark.parametrize(
    ("people", "rules", "facts", "pointers", "owner", "assignee", "reason"),
    [
        # rolling: next after the pointer, wrapping around
        (users(), RULES, LeadFacts(), {}, None, ANNA.email, "rolling distribution: next in turn"),
        (users(), RULES, LeadFacts(), {"rolling": 1}, None, BEN.email, "next in turn"),
        (users(), RULES, LeadFacts(), {"rolling": 3}, None, ANNA.email, "next in turn"),
        # an absent user is passed over, and the reason says so
        (
            users(absent(BEN)),
            RULES,
            LeadFacts(),
            {"rolling": 1},
            None,
            CARL.email,
            "passed over: ben@autohaus.example absent until 2026-12-05",
        ),
        # everyone absent: the one in turn's substitute
        (
            users(absent(ANNA, CHEF.email), absent(BEN), absent(CARL)),
            RULES,
            LeadFacts(),
            {},
            None,
            CHEF.email,
            "anna@autohaus.example absent until 2026-12-05 → substitute chef@autohaus.example",
        ),
        # everyone absent, no substitute: fallback user, with the hop explained
        (
            users(absent(ANNA), absent(BEN), absent(CARL)),
            RULES,
            LeadFacts(),
            {},
            None,
            CHEF.email,
            "anna@autohaus.example absent until 2026-12-05, no substitute → fallback user",
        ),
        # fallback user absent too: the admin account
        (
            users(absent(ANNA), absent(BEN), absent(CARL), absent(CHEF)),
            RULES,
            LeadFacts(),
            {},
            None,
            ADMIN.email,
            "fallback user chef@autohaus.example absent until 2026-12-05 → admin account",
        ),
        # no fallback configured
        (
            users(absent(ANNA), absent(BEN), absent(CARL)),
            Rules(admin_address=ADMIN.email),
            LeadFacts(),
            {},
            None,
            ADMIN.email,
            "no fallback user configured → admin account",
        ),
        # groups: first matching rule, rolling inside it
        (
            users(),
            Rules(mode="groups", groups=GROUPS, fallback_user=CHEF.email),
            LeadFacts("oem:opel", "test_drive"),
            {"group:neuwagen": 1},
            None,
            BEN.email,
            "group neuwagen: next in turn",
        ),
        (
            users(),
            Rules(mode="groups", groups=GROUPS, fallback_user=CHEF.email),
            LeadFacts("website", "service"),
            {},
            None,
            BEN.email,
            "group service",
        ),
        (
            users(),
            Rules(mode="groups", groups=GROUPS, fallback_user=CHEF.email),
            LeadFacts("mobile.de", "inquiry", location="augsburg"),
            {},
            None,
            CARL.email,
            "group gebraucht",
        ),
        (
            users(),
            Rules(mode="groups", groups=GROUPS, fallback_user=CHEF.email),
            LeadFacts("mobile.de", "inquiry", location="muenchen"),
            {},
            None,
            CHEF.email,
            "no distribution group matches",
        ),
        # solo group, member absent, substitute set: the substitute
        (
            users(absent(CARL, BEN.email)),
            Rules(mode="groups", groups=GROUPS, fallback_user=CHEF.email),
            LeadFacts("mobile.de", "inquiry", location="augsburg"),
            {},
            None,
            BEN.email,
            "substitute ben@autohaus.example",
        ),
        # follow-up of a known customer: his salesperson, outside the rotation
        (
            users(),
            RULES,
            LeadFacts(),
            {"rolling": 2},
            ANNA.email,
            ANNA.email,
            "follow-up of a known customer",
        ),
        (
            users(absent(ANNA)),
            RULES,
            LeadFacts(),
            {},
            ANNA.email,
            CHEF.email,
            "anna@autohaus.example absent until 2026-12-05, no substitute → fallback user",
        ),
        (
            users(absent(ANNA, CARL.email)),
            RULES,
            LeadFacts(),
            {},
            ANNA.email,
            CARL.email,
            "substitute carl@autohaus.example → follow-up",
        ),
        # ... unless follow-ups are distributed normally
        (
            users(),
            Rules(fallback_user=CHEF.email, distribute_followups_normally=True),
            LeadFacts(),
            {"rolling": 2},
            ANNA.email,
            CARL.email,
            "rolling distribution",
        ),
        # pool: everything to the pool account (nobody else receives leads)
        (
            [Candidate(1, ANNA.email, receives_leads=False), CHEF, ADMIN, POOL],
            Rules(mode="pool", pool_user=POOL.email, fallback_user=CHEF.email),
            LeadFacts(),
            {},
            None,
            POOL.email,
            "pool mode → pool account",
        ),
    ],
)
def test_decisions(
    people: list[Candidate],
    rules: Rules,
    facts: LeadFacts,
    pointers: dict[str, int],
    owner: str | None,
    assignee: str,
    reason: str,
) -> None:
    decision = decide(people, rules, facts, DAY, pointers, owner=owner)
    assert decision.assignee == assignee
    assert reason in decision.reason


def test_pool_rotates_with_users_who_still_receive_leads() -> None:
    rules = Rules(mode="pool", pool_user=POOL.email)
    people = [ANNA, POOL]  # the reference product's pitfall the settings warn about
    pointers: dict[str, int] = {}
    owners = []
    for _ in range(4):
        decision = decide(people, rules, LeadFacts(), DAY, pointers)
        owners.append((decision.assignee, decision.pool))
        assert decision.rotation == "pool" and decision.pointer is not None
        pointers["pool"] = decision.pointer
    assert owners == [(ANNA.email, False), (POOL.email, True)] * 2


def test_substitute_chain_stops_at_the_first_present_user_and_never_loops() -> None:
    a = Candidate(1, "a@x.example", absences=away("b@x.example"))
    b = Candidate(2, "b@x.example", absences=away("c@x.example"))
    c = Candidate(3, "c@x.example")
    found, hops = follow_substitutes(a, {u.email: u for u in (a, b, c)}, DAY)
    assert found == c and len(hops) == 2
    looping_b = Candidate(2, "b@x.example", absences=away("a@x.example"))
    found, hops = follow_substitutes(a, {u.email: u for u in (a, looping_b)}, DAY)
    assert found is None and hops[-1].code == "absent_substitute_loop"
    assert "loops back to a@x.example" in english(hops[-1:])
    assert follow_substitutes(a, {}, DAY + timedelta(days=10)) == (a, [])  # absence over


@pytest.mark.parametrize(
    ("level", "location", "seen"),
    [
        ("all", None, True),
        ("own_location", "muenchen", True),
        ("own_location", "augsburg", False),
        ("own_location", None, False),
        ("none", "muenchen", False),
    ],
)
def test_category_permissions(level: str, location: str | None, seen: bool) -> None:
    user = Candidate(1, "a@x.example", locations=("muenchen",), permissions=(("service", level),))
    assert may_see(user, "service", location) is seen
    assert may_see(user, "sales", location) is True  # not configured: all


def test_permission_none_keeps_a_user_out_of_the_rotation() -> None:
    blind = Candidate(**{**ANNA.__dict__, "permissions": (("service", "none"),)})
    decision = decide(users(blind), RULES, LeadFacts(kind="service"), DAY, {})
    assert decision.assignee == BEN.email
    assert category_of("financing") == "financing" and category_of("trade_in") == "sales"


def test_group_globs_and_missing_values() -> None:
    rule = GroupRule("x", (("source", ("oem:*",)), ("make", ("Opel", "VW"))))
    assert match_group([rule], LeadFacts("oem:opel", make="opel")) == rule
    assert match_group([rule], LeadFacts("oem:opel", make=None)) is None
    assert match_group([rule], LeadFacts("mobile.de", make="VW")) is None


def test_rotation_order_wraps_after_the_pointer() -> None:
    assert [u.id for u in rotation_order([CARL, ANNA, BEN], 2)] == [3, 1, 2]
    assert [u.id for u in rotation_order([CARL, ANNA, BEN], None)] == [1, 2, 3]
    assert [u.id for u in rotation_order([CARL, ANNA], 99)] == [1, 3]  # pointer user gone


# --- properties ---------------------------------------------------------------

N_USERS = 5
people_st = st.lists(
    st.tuples(st.booleans(), st.booleans()),  # receives_leads, has_substitute
    min_size=N_USERS,
    max_size=N_USERS,
)
# each step: which users are absent while this lead arrives
steps_st = st.lists(st.frozensets(st.integers(1, N_USERS)), min_size=1, max_size=60)


def _population(flags: list[tuple[bool, bool]], absent_ids: frozenset[int]) -> list[Candidate]:
    out = []
    for i, (receives, has_sub) in enumerate(flags, 1):
        sub = f"u{i % N_USERS + 1}@x.example" if has_sub else ""
        absences = away(sub) if i in absent_ids else ()
        out.append(Candidate(i, f"u{i}@x.example", receives_leads=receives, absences=absences))
    out.append(Candidate(98, "pool@x.example", receives_leads=False, can_be_assigned=False))
    out.append(Candidate(99, "admin@x.example", role="admin", receives_leads=False))
    return out


@settings(max_examples=300, deadline=None)
@given(
    flags=people_st,
    steps=steps_st,
    fallback=st.sampled_from(["", "u1@x.example"]),
    mode=st.sampled_from(["rolling", "pool"]),
)
def test_nobody_absent_receives_and_every_lead_has_one_owner(
    flags: list[tuple[bool, bool]], steps: list[frozenset[int]], fallback: str, mode: str
) -> None:
    rules = Rules(mode, fallback, "pool@x.example", "admin@x.example")
    pointers: dict[str, int] = {}
    for absent_ids in steps:
        population = _population(flags, absent_ids)
        decision = decide(population, rules, LeadFacts(), DAY, pointers)
        owners = [u for u in population if u.email == decision.assignee]
        assert len(owners) == 1  # exactly one owner (the admin account as last resort)
        owner = owners[0]
        assert decision.pool is (owner.email == "pool@x.example")
        if owner.role != "admin":
            assert owner.absence_on(DAY) is None, decision.reason
        if decision.rotation:
            assert decision.pointer is not None
            pointers[decision.rotation] = decision.pointer


@settings(max_examples=300, deadline=None)
@given(flags=people_st, steps=steps_st)
def test_spread_between_users_present_throughout_stays_at_most_one(
    flags: list[tuple[bool, bool]], steps: list[frozenset[int]]
) -> None:
    """Over any stretch of arrivals, two receivers present the whole time differ by ≤ 1."""
    rules = Rules(admin_address="admin@x.example")
    pointers: dict[str, int] = {}
    owners = []
    for absent_ids in steps:
        decision = decide(_population(flags, absent_ids), rules, LeadFacts(), DAY, pointers)
        owners.append(decision.assignee)
        if decision.rotation:
            assert decision.pointer is not None
            pointers[decision.rotation] = decision.pointer
    receivers = [i for i, (receives, _) in enumerate(flags, 1) if receives]
    for start in range(len(steps)):
        for end in range(start + 1, len(steps) + 1):
            present = [i for i in receivers if not any(i in steps[k] for k in range(start, end))]
            counts = Counter(owners[start:end])
            got = [counts[f"u{i}@x.example"] for i in present]
            if got:
                assert max(got) - min(got) <= 1, (start, end, got)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 6), rounds=st.integers(1, 5))
def test_each_present_user_gets_one_lead_per_round(n: int, rounds: int) -> None:
    population = [Candidate(i, f"u{i}@x.example") for i in range(1, n + 1)]
    pointers: dict[str, int] = {}
    counts: Counter[str | None] = Counter()
    for _ in range(n * rounds):
        decision = decide(population, Rules(), LeadFacts(), DAY, pointers)
        counts[decision.assignee] += 1
        assert decision.pointer is not None
        pointers["rolling"] = decision.pointer
    assert set(counts.values()) == {rounds}
