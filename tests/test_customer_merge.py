"""Merging two customers (issue 20, item 9; seed 004's field-level duplicate check).

The service (:mod:`mailgate.distribution.customer_file`) and the page: who may merge
(supervisors and admins who see every lead of both), the field choice, the leads moving,
the protocol line, and the edge cases: a customer into himself, into a merged one, a merged
one into another, and two merges racing over the same pair.  Both databases.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailgate.distribution.customer_file import (
    CustomerFileError,
    merge_customers,
    survivor_of,
)
from mailgate.models import Customer, Lead, LeadSearch, ProtocolEntry

from .test_customer_file import customer, lead, page
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    CARL,
    CHEF,
    app_fixture,
    team_fixture,
)
from .webui_helpers import csrf_token, logged_in, post

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def pair(factory: sessionmaker[Session], owner: str = ANNA) -> tuple[int, int, int, int]:
    """Two records of one person (survivor, duplicate) with a lead each."""
    survivor = customer(
        factory,
        name="Petra Paul",
        email="petra@alt.example",
        phone="089 123456",
        postcode="80331",
        city="München",
        match_name="paul petra",
    )
    duplicate = customer(
        factory,
        name="Petra Paul",
        email="petra.paul@neu.example",
        phone="0170 9999999",
        phone_e164="+491709999999",
        postcode="80331",
        street="Hauptstr. 1",
        match_name="paul petra",
    )
    kept = lead(factory, survivor, owner, {"make": "Opel"})
    moved = lead(factory, duplicate, owner, {"make": "Kia", "listing_id": "412345678"})
    return survivor, duplicate, kept, moved


def test_merge_moves_every_lead_and_takes_the_chosen_fields(
    team: sessionmaker[Session],
) -> None:
    survivor, duplicate, kept, moved = pair(team)
    with team.begin() as session:
        result = merge_customers(
            session, survivor, duplicate, ["phone", "street"], actor="chef@x", now=NOW
        )
    assert result.moved_leads == 1 and result.taken == ("phone", "street")
    with team() as session:
        s, d = session.get(Customer, survivor), session.get(Customer, duplicate)
        assert s is not None and d is not None
        assert s.phone == "0170 9999999" and s.phone_e164 == "+491709999999"  # keys follow
        assert s.street == "Hauptstr. 1" and s.email == "petra@alt.example"  # not chosen
        assert d.merged_into_id == survivor and d.merged_at is not None
        assert session.get(Lead, moved).customer_id == survivor  # type: ignore[union-attr]
        # the search line follows the lead (triggers): the new phone finds both leads
        for lead_id in (kept, moved):
            text = session.scalar(select(LeadSearch.text).where(LeadSearch.lead_id == lead_id))
            assert text is not None and "491709999999" in text, lead_id
        for lead_id in (kept, moved):
            lines = session.scalars(
                select(ProtocolEntry.detail).where(ProtocolEntry.lead_id == lead_id)
            ).all()
            assert any(
                f"customer #{duplicate} merged into customer #{survivor} by chef@x" in x
                for x in lines
            ), lead_id
    with team() as session:
        assert survivor_of(session, duplicate) == survivor
        assert survivor_of(session, survivor) is None


@pytest.mark.parametrize("case", ["itself", "into_merged", "merged_into", "missing"])
def test_merge_edge_cases_are_refused_and_change_nothing(
    team: sessionmaker[Session], case: str
) -> None:
    survivor, duplicate, _kept, moved = pair(team)
    third = customer(team, name="Dritter", email="dritter@kunden.example")
    with team.begin() as session:
        merge_customers(session, third, duplicate, [], actor="chef@x", now=NOW)
    # now: duplicate is merged into third (and its lead moved there)
    target, source, code = {
        "itself": (survivor, survivor, "same_customer"),
        "into_merged": (duplicate, survivor, "already_merged"),
        "merged_into": (survivor, duplicate, "already_merged"),
        "missing": (survivor, 987654, "already_merged"),
    }[case]
    with team() as session:
        before = [
            (c.id, c.merged_into_id, c.email)
            for c in session.scalars(select(Customer).order_by(Customer.id))
        ]
        leads_before = [
            (x.id, x.customer_id) for x in session.scalars(select(Lead).order_by(Lead.id))
        ]
    with team.begin() as session, pytest.raises(CustomerFileError) as raised:
        merge_customers(session, target, source, ["email"], actor="chef@x", now=NOW)
    assert raised.value.code == code
    with team() as session:
        after = [
            (c.id, c.merged_into_id, c.email)
            for c in session.scalars(select(Customer).order_by(Customer.id))
        ]
        assert after == before
        assert [
            (x.id, x.customer_id) for x in session.scalars(select(Lead).order_by(Lead.id))
        ] == leads_before
        assert session.get(Lead, moved).customer_id == third  # type: ignore[union-attr]


def test_two_merges_racing_over_one_pair_never_both_succeed(
    team: sessionmaker[Session],
) -> None:
    """A into B and B into A at the same moment: one wins, the other finds his customer
    merged; never a cycle, never a lead left on a merged customer."""
    for _round in range(3):
        a, b, _kept, _moved = pair(team)
        outcomes = race(team, (a, b), (b, a))
        assert sorted(outcomes) in (["already_merged", "merged"], ["busy", "merged"]), outcomes
        with team() as session:
            found = session.scalars(select(Customer).where(Customer.id.in_((a, b))))
            rows = {c.id: c for c in found}
            merged = [c for c in rows.values() if c.merged_into_id is not None]
            assert len(merged) == 1  # exactly one, pointing at the other: no cycle
            loser = merged[0]
            winner = a if loser.id == b else b
            assert loser.merged_into_id == winner and rows[winner].merged_into_id is None
            owners = session.scalars(select(Lead.customer_id).where(Lead.customer_id.in_((a, b))))
            assert set(owners) == {winner}


def race(factory: sessionmaker[Session], *merges: tuple[int, int]) -> list[str]:
    """Run the merges (survivor, other) in threads that start together; their outcomes."""
    barrier = threading.Barrier(len(merges))
    outcomes: list[str] = []

    def run(survivor: int, other: int) -> None:
        barrier.wait()
        try:
            with factory.begin() as session:
                merge_customers(session, survivor, other, [], actor="x", now=NOW)
            outcomes.append("merged")
        except CustomerFileError as exc:
            outcomes.append(exc.code)
        except OperationalError:  # SQLite: the busy writer gives up; nothing written
            outcomes.append("busy")

    threads = [threading.Thread(target=run, args=pair) for pair in merges]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


# --- the page ----------------------------------------------------------------------------


def test_a_supervisor_merges_on_the_page_field_by_field(
    team: sessionmaker[Session], app: Flask
) -> None:
    survivor, duplicate, _kept, moved = pair(team)
    chef = logged_in(app, CHEF)
    detail = page(chef, f"/customers/{survivor}")
    assert f"/customers/{survivor}/merge?other={duplicate}" in detail  # listed as duplicate
    compare = page(chef, f"/customers/{survivor}/merge?other={duplicate}")
    assert "petra@alt.example" in compare and "petra.paul@neu.example" in compare
    assert 'name="keep_email"' in compare and 'name="keep_name"' not in compare  # same name
    body = {"other": str(duplicate), "keep_email": "other", "keep_phone": "mine", "keep_x": "other"}
    response = post(chef, f"/customers/{survivor}/merge", body)
    assert response.status_code == 302
    with team() as session:
        s = session.get(Customer, survivor)
        assert s is not None and s.email == "petra.paul@neu.example" and s.phone == "089 123456"
        assert session.get(Lead, moved).customer_id == survivor  # type: ignore[union-attr]
    after = page(chef, f"/customers/{survivor}")
    assert "zusammengeführt" in after and "Kia" in after
    # the merged one is gone from the list and his page is a 404 for the supervisor
    assert chef.get(f"/customers/{duplicate}").status_code == 404
    listing = page(chef, "/customers?q=Petra")
    assert listing.count(">Petra Paul<") == 1
    # the admin is sent on to the survivor
    response = logged_in(app, ADA).get(f"/customers/{duplicate}")
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/customers/{survivor}"
    )


def test_a_salesperson_may_compare_but_not_merge(team: sessionmaker[Session], app: Flask) -> None:
    survivor, duplicate, _kept, moved = pair(team)
    anna = logged_in(app, ANNA)
    assert f"/merge?other={duplicate}" not in page(anna, f"/customers/{survivor}")
    compare = page(anna, f"/customers/{survivor}/merge?other={duplicate}")
    assert "Teamleitung" in compare and "Kunden zusammenführen</button>" not in compare
    token = csrf_token(anna, f"/customers/{survivor}")
    data = {"other": str(duplicate), "csrf_token": token}
    assert anna.post(f"/customers/{survivor}/merge", data=data).status_code == 403
    with team() as session:
        assert session.get(Lead, moved).customer_id == duplicate  # type: ignore[union-attr]


def test_merging_needs_every_lead_of_both_in_sight(team: sessionmaker[Session], app: Flask) -> None:
    """Chef supervises Anna, not Carl: a customer who also has a lead of Carl's is not his to
    merge (403), and a customer only Carl has is a 404."""
    survivor, duplicate, _kept, _moved = pair(team)
    lead(team, duplicate, CARL)  # the duplicate is also Carl's customer
    carls_only = customer(team, name="Nur Carl", email="nurcarl@kunden.example")
    lead(team, carls_only, CARL)
    chef = logged_in(app, CHEF)
    token = csrf_token(chef, f"/customers/{survivor}")
    for other, status in ((duplicate, 403), (carls_only, 404)):
        data = {"other": str(other), "csrf_token": token}
        assert chef.post(f"/customers/{survivor}/merge", data=data).status_code == status
    with team() as session:
        assert session.get(Customer, duplicate).merged_into_id is None  # type: ignore[union-attr]


@pytest.mark.parametrize("other", ["same", "abc", "-5", "99999999999999999999", "", "1.5"])
def test_merge_form_refuses_bad_and_self_ids_in_german(
    team: sessionmaker[Session], app: Flask, other: str
) -> None:
    survivor, duplicate, _kept, _moved = pair(team)
    ada = logged_in(app, ADA)
    value = str(survivor) if other == "same" else other
    response = post(ada, f"/customers/{survivor}/merge", {"other": value})
    assert response.status_code in (200, 302)
    text = ada.get(f"/customers/{survivor}/merge").get_data(as_text=True)
    assert "Traceback" not in text
    if other == "same":
        assert "mit sich selbst" in text
    with team() as session:
        assert session.get(Customer, survivor).merged_into_id is None  # type: ignore[union-attr]
        assert session.get(Customer, duplicate).merged_into_id is None  # type: ignore[union-attr]


def test_merge_without_csrf_is_refused(team: sessionmaker[Session], app: Flask) -> None:
    survivor, duplicate, _kept, _moved = pair(team)
    ada = logged_in(app, ADA)
    response = ada.post(f"/customers/{survivor}/merge", data={"other": str(duplicate)})
    assert response.status_code == 400
    with team() as session:
        assert session.get(Customer, duplicate).merged_into_id is None  # type: ignore[union-attr]


def test_merging_into_a_customer_merged_meanwhile_says_so(
    team: sessionmaker[Session], app: Flask
) -> None:
    """The page was opened, then someone else merged the survivor away: German message."""
    survivor, duplicate, _kept, _moved = pair(team)
    third = customer(team, name="Dritter")
    lead(team, third, ANNA)
    ada = logged_in(app, ADA)
    token = csrf_token(ada, f"/customers/{survivor}/merge?other={duplicate}")
    with team.begin() as session:
        merge_customers(session, third, survivor, [], actor="other@x", now=NOW)
    data: dict[str, Any] = {"other": str(duplicate), "csrf_token": token}
    response = ada.post(f"/customers/{survivor}/merge", data=data)
    # the survivor has no lead now: for the admin the page still opens, the merge is refused
    assert response.status_code == 302
    text = ada.get(response.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert "inzwischen zusammengeführt" in text
    with team() as session:
        assert session.get(Customer, duplicate).merged_into_id is None  # type: ignore[union-attr]
