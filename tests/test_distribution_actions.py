"""Manual actions (reassign, forward, bulk, pool take, delete) and the rotation service."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import load_dealer_config
from mailgate.distribution import actions
from mailgate.distribution.actions import ActionError
from mailgate.distribution.policies import LeadFacts
from mailgate.distribution.service import assign
from mailgate.models import DistributionState, Lead

from .distribution_helpers import (
    form_mail,
    ingest,
    leads,
    outbox,
    owners,
    protocol,
    setup,
    team_toml,
)

POOL = '\n[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n'
NOBODY = {k: "receives_leads = false" for k in ("anna", "ben", "carl")}


def run(factory: sessionmaker[Session], action: str, *args: object, **kwargs: object) -> object:
    with session_scope(factory) as session:
        dealer = load_dealer_config(session)
        return getattr(actions, action)(session, dealer, *args, **kwargs)


def test_rotation_is_persistent_across_sessions(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml())
    got = []
    for _ in range(4):  # a new session each time, as after a restart
        with session_scope(factory) as session:
            user, _decision = assign(session, load_dealer_config(session), LeadFacts())
            assert user is not None
            got.append(user.email.split("@")[0])
    assert got == ["anna", "ben", "carl", "anna"]
    with factory() as session:
        state = session.scalars(select(DistributionState)).one()
        assert state.version == 4 and state.pointers == {"rolling": 1}


def test_rolled_back_assignment_does_not_move_the_rotation(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml())
    with factory() as session:
        assign(session, load_dealer_config(session), LeadFacts())
        session.rollback()  # the lead was never written: nobody lost a turn
    with session_scope(factory) as session:
        user, _ = assign(session, load_dealer_config(session), LeadFacts())
    assert user is not None and user.email == "anna@autohaus.example"


def test_reassign_and_forward_write_protocol_and_notify(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml())
    ingest(factory, form_mail(1), form_mail(2), form_mail(3))
    first, second, third = (lead.id for lead in leads(factory))
    run(
        factory,
        "forward",
        first,
        "carl@autohaus.example",
        actor="anna@autohaus.example",
        note="Kunde spricht nur Italienisch",
    )
    run(factory, "reassign", [second, third], "anna@autohaus.example", actor="system")
    assert owners(factory) == ["carl", "anna", "anna"]
    entries = protocol(factory, first)
    assert (
        "forwarded",
        "from anna@autohaus.example to carl@autohaus.example; note: Kunde spricht nur Italienisch",
    ) in entries
    forwarded = [m for m in outbox(factory) if m.purpose == "reassigned"]
    assert [(m.lead_id, m.recipients) for m in forwarded] == [
        (first, ["carl@autohaus.example"]),
        (second, ["anna@autohaus.example"]),
        (third, ["anna@autohaus.example"]),
    ]
    assert b"Italienisch" in forwarded[0].raw or "Italienisch" in forwarded[0].raw.decode(
        "utf-8", "replace"
    )


def test_refused_actions_change_nothing(factory: sessionmaker[Session]) -> None:
    setup(factory, team_toml(users={"carl": 'permissions = { sales = "none" }'}))
    ingest(factory, form_mail(1), form_mail(2))
    first, second = (lead.id for lead in leads(factory))
    before = (owners(factory), len(outbox(factory)))
    with pytest.raises(ActionError, match="ada@autohaus.example cannot be assigned"):
        run(factory, "reassign", [first], "ada@autohaus.example", actor="chef@autohaus.example")
    with pytest.raises(ActionError, match="carl@autohaus.example may not see sales leads"):
        run(factory, "reassign", [first], "carl@autohaus.example", actor="chef@autohaus.example")
    with pytest.raises(ActionError, match="no lead 999"):
        run(factory, "reassign", [first, 999], "ben@autohaus.example", actor="chef@x.example")
    with pytest.raises(ActionError, match="no user"):
        run(factory, "reassign", [first], "nobody@autohaus.example", actor="chef@x.example")
    with factory.begin() as session:
        session.execute(update(Lead).where(Lead.id == second).values(status="closed"))
    with pytest.raises(ActionError, match=f"lead {second} is closed"):
        run(factory, "delete_leads", [first, second], actor="chef@autohaus.example")
    assert (owners(factory), len(outbox(factory))) == before
    assert [lead.status for lead in leads(factory)] == ["assigned", "closed"]
    run(factory, "delete_leads", [first], actor="chef@autohaus.example")
    assert leads(factory)[0].status == "deleted"
    assert ("deleted", "deleted (was assigned)") in protocol(factory, first)


def _pool(factory: sessionmaker[Session], extra: str = "") -> list[int]:
    setup(
        factory,
        team_toml(f'mode = "pool"\npool_user = "pool@autohaus.example"\n{extra}', NOBODY, POOL),
    )
    ingest(factory, form_mail(1), form_mail(2))
    return [lead.id for lead in leads(factory)]


def test_take_from_pool_and_oldest_only(factory: sessionmaker[Session]) -> None:
    older, newer = _pool(factory, "pool_oldest_only = true")
    with factory() as session:
        visible = actions.pool_leads(session, load_dealer_config(session), "ben@autohaus.example")
        assert [lead.id for lead in visible] == [older, newer]
    with pytest.raises(ActionError, match=f"only the oldest pool lead may be taken: lead {older}"):
        run(factory, "take_from_pool", newer, "ben@autohaus.example")
    run(factory, "take_from_pool", older, "ben@autohaus.example")
    with pytest.raises(ActionError, match="not in the pool"):
        run(factory, "take_from_pool", older, "anna@autohaus.example")
    assert owners(factory) == ["ben", "pool"]
    assert leads(factory)[0].status == "assigned"
    assert [(m.purpose, m.recipients) for m in outbox(factory)] == [
        ("notification", ["ben@autohaus.example"])
    ]
    assert ("taken", "taken from the pool by ben@autohaus.example") in protocol(factory, older)


def test_two_people_cannot_take_the_same_pool_lead(factory: sessionmaker[Session]) -> None:
    lead_id, _ = _pool(factory)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def take(who: str) -> None:
        barrier.wait()
        try:
            run(factory, "take_from_pool", lead_id, f"{who}@autohaus.example")
            results[who] = "taken"
        except ActionError as exc:
            results[who] = str(exc)

    threads = [threading.Thread(target=take, args=(who,)) for who in ("anna", "ben")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()).count("taken") == 1, results
    winner = next(who for who, result in results.items() if result == "taken")
    assert owners(factory)[0] == winner
    assert [m.recipients for m in outbox(factory)] == [[f"{winner}@autohaus.example"]]
