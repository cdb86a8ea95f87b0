"""Issue 17 item 2: the supervisor's escalation mail carries take-over and reassign links.

The stage-2 mail comes from the real scheduler; its links are opened with the
Flask test client like a phone opens them (no login).  GET only confirms —
mail scanners open every link — the POST with the page's CSRF token acts,
once.  Forged, expired, wrongly addressed and replayed links, and a reassign
choice outside the offered list, change nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import load_dealer_config
from mailgate.escalation.scheduler import tick
from mailgate.models import Lead, ProtocolEntry, User, utcnow
from mailgate.signed_links import link_secret, new_claims, sign

from .distribution_helpers import form_mail, ingest, setup, team_toml
from .test_signed_links import lead_of, links_of, mail_text
from .webui_helpers import csrf_token, ensure_user, web_app

OPTION = re.compile(r'<option value="(\d+)">([^<]*)</option>')


@pytest.fixture
def escalated(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """One lead, unanswered through stage 1 and the supervisor's escalation."""
    setup(factory, team_toml())
    for key, role in (
        ("anna", "salesperson"),
        ("ben", "salesperson"),
        ("carl", "salesperson"),
        ("chef", "supervisor"),
        ("ada", "admin"),
    ):
        ensure_user(factory, f"{key}@autohaus.example", role)
    ingest(factory, form_mail(1))
    with factory() as session:
        calendar = load_dealer_config(session).calendar
    lead = lead_of(factory)
    tick(factory, now=calendar.next_open(lead.overdue_at + timedelta(seconds=1)))
    lead = lead_of(factory)
    assert lead.escalation_stage == 2 and lead.stage2_at is not None
    tick(factory, now=calendar.next_open(lead.stage2_at + timedelta(seconds=1)))
    assert lead_of(factory).escalation_stage == 3
    return factory


def _user(factory: sessionmaker[Session], key: str) -> User:
    with factory() as session:
        user = session.scalar(select(User).where(User.email == f"{key}@autohaus.example"))
        assert user is not None
        session.expunge(user)
        return user


def _links(factory: sessionmaker[Session]) -> tuple[str, str]:
    row, links = links_of(factory, "stage2")
    assert row.recipients == ["chef@autohaus.example"]
    text = mail_text(row, factory)
    assert "Anfrage selbst übernehmen: https://" in text
    assert "Anfrage neu zuweisen: https://" in text
    take_over, reassign = links
    return take_over, reassign


def test_take_over_confirms_on_get_and_acts_once_on_post(
    escalated: sessionmaker[Session],
) -> None:
    take_over, _ = _links(escalated)
    before = lead_of(escalated)
    client = web_app(escalated).test_client()
    for _ in range(2):  # a mail scanner, then the supervisor: nothing happens on GET
        page = client.get(take_over)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "Anfrage selbst übernehmen" in html and 'method="post"' in html
    assert lead_of(escalated).assignee_id == before.assignee_id
    token = csrf_token(client, take_over)
    done = client.post(take_over, data={"csrf_token": token})
    assert done.status_code == 200 and "gehört jetzt Ihnen" in done.get_data(as_text=True)
    after = lead_of(escalated)
    assert after.assignee_id == _user(escalated, "chef").id
    # unanswered: the new owner gets stage 1 afresh, from now
    assert after.escalation_stage == 0 and after.next_due_at is not None
    assert after.next_due_at > utcnow()
    with escalated() as session:
        actors = session.scalars(
            select(ProtocolEntry.actor).where(
                ProtocolEntry.lead_id == after.id, ProtocolEntry.action == "reassigned"
            )
        ).all()
    assert actors == ["chef@autohaus.example"]
    again = client.post(take_over, data={"csrf_token": token})
    assert again.status_code == 410
    assert lead_of(escalated).assignee_id == after.assignee_id


def test_reassign_offers_who_may_take_it_and_refuses_anyone_else(
    escalated: sessionmaker[Session],
) -> None:
    _, reassign = _links(escalated)
    lead = lead_of(escalated)
    client = web_app(escalated).test_client()
    page = client.get(reassign)
    assert page.status_code == 200
    offered = dict(OPTION.findall(page.get_data(as_text=True)))
    holder = str(lead.assignee_id)
    ada = str(_user(escalated, "ada").id)
    assert offered and holder not in offered and ada not in offered  # ada: not assignable
    token = csrf_token(client, reassign)
    for hostile in (ada, holder, "", "1 OR 1=1", "9" * 40):
        refused = client.post(reassign, data={"csrf_token": token, "to": hostile})
        assert refused.status_code == 400, hostile
        assert lead_of(escalated).assignee_id == lead.assignee_id
    target = next(iter(offered))
    done = client.post(reassign, data={"csrf_token": token, "to": target})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert f"jetzt {offered[target]} zugewiesen" in done.get_data(as_text=True)
    assert str(lead_of(escalated).assignee_id) == target
    assert client.post(reassign, data={"csrf_token": token, "to": target}).status_code == 410


def test_forged_expired_and_wrongly_addressed_links_change_nothing(
    escalated: sessionmaker[Session],
) -> None:
    take_over, _ = _links(escalated)
    lead = lead_of(escalated)
    client = web_app(escalated).test_client()
    token = csrf_token(client, take_over)
    forged = take_over[:-3] + ("AAA" if not take_over.endswith("AAA") else "BBB")
    assert client.get(forged).status_code == 400
    assert client.post(forged, data={"csrf_token": token}).status_code == 400
    with escalated() as session:
        secret = link_secret(session)
        session.commit()
    chef, ben = _user(escalated, "chef"), _user(escalated, "ben")
    old = new_claims(chef.id, lead.id, "take_over", utcnow() - timedelta(hours=73))
    expired = f"/m/{sign(secret, old)}"
    assert client.get(expired).status_code == 410
    assert client.post(expired, data={"csrf_token": token}).status_code == 410
    # a link made with the right key for a salesperson: supervisors' actions only
    salesman = f"/m/{sign(secret, new_claims(ben.id, lead.id, 'take_over', utcnow()))}"
    refused = client.get(salesman)
    assert refused.status_code == 403 and "Teamleitung" in refused.get_data(as_text=True)
    assert client.post(salesman, data={"csrf_token": token}).status_code == 403
    # no CSRF token: the form's POST is refused before anything is checked
    assert client.post(take_over).status_code == 400
    assert lead_of(escalated).assignee_id == lead.assignee_id


def test_a_demoted_supervisor_or_a_closed_lead_refuses_the_link(
    escalated: sessionmaker[Session],
) -> None:
    take_over, _ = _links(escalated)
    lead = lead_of(escalated)
    client = web_app(escalated).test_client()
    token = csrf_token(client, take_over)
    with db.session_scope(escalated) as session:
        session.execute(
            update(User).where(User.email == "chef@autohaus.example").values(role="salesperson")
        )
    assert client.post(take_over, data={"csrf_token": token}).status_code == 403
    with db.session_scope(escalated) as session:
        session.execute(
            update(User).where(User.email == "chef@autohaus.example").values(role="supervisor")
        )
        session.execute(update(Lead).where(Lead.id == lead.id).values(status="closed"))
    assert client.post(take_over, data={"csrf_token": token}).status_code == 409
    assert lead_of(escalated).assignee_id == lead.assignee_id
