"""Two processes assign 1,000 leads at once on PostgreSQL: every user gets his share ±1.

This is the compare-and-set on the rotation state under real concurrency
(READ COMMITTED, separate connections and processes), not a simulation.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import load_dealer_config
from mailgate.distribution.policies import LeadFacts
from mailgate.distribution.service import assign
from mailgate.models import Lead, User

from .conftest import _truncate_all
from .distribution_helpers import setup, team_toml

LEADS = 1000
PROCESSES = 2


def _assign_many(url: str, count: int, barrier: Any) -> None:
    engine = db.create_db_engine(url, pool_size=1)
    factory = db.make_session_factory(engine)
    with factory() as session:
        dealer = load_dealer_config(session)
    barrier.wait()
    for _ in range(count):
        with db.session_scope(factory) as session:
            user, decision = assign(session, dealer, LeadFacts())
            assert user is not None, decision.reason
            session.execute(
                insert(Lead).values(
                    dedupe_key=uuid.uuid4().hex,
                    reply_token=uuid.uuid4().hex,
                    assignee_id=user.id,
                    status="assigned",
                )
            )
    engine.dispose()


@pytest.fixture
def pg_factory(pg_server_url: str) -> Any:
    engine = db.create_db_engine(pg_server_url)
    db.upgrade(engine)
    _truncate_all(engine)
    yield pg_server_url, db.make_session_factory(engine)
    engine.dispose()


def test_two_processes_assign_a_thousand_leads_fairly(
    pg_factory: tuple[str, sessionmaker[Session]],
) -> None:
    url, factory = pg_factory
    setup(factory, team_toml())
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    workers = [
        context.Process(target=_assign_many, args=(url, LEADS // PROCESSES, barrier))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    with factory() as session:
        counts = Counter(
            dict(
                session.execute(
                    select(User.email, func.count(Lead.id))
                    .join(Lead, Lead.assignee_id == User.id)
                    .group_by(User.email)
                ).all()
            )
        )
    receivers = ["anna@autohaus.example", "ben@autohaus.example", "carl@autohaus.example"]
    assert set(counts) == set(receivers) and sum(counts.values()) == LEADS
    share = LEADS / len(receivers)
    assert all(abs(counts[r] - share) <= 1 for r in receivers), counts
