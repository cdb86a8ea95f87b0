"""Issue 20 #5: "not reached" is not the answer (seed 000's status ladder).

Seed 000 records a call's result ("Result: Not on the phone") with a follow-up
activity ("Follow-up activity: Not on the phone"), and its status ladder goes
new → contacts → test drive → offer → contract: an attempt is not a contact.
Only a reached customer (or a mail answer) counts as the response; "not
reached" and "message left" schedule a follow-up after
``escalation.follow_up_after`` of working time and keep the lead in My day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings, load_dealer_config
from mailgate.escalation.actions import ActionError, log_contact
from mailgate.escalation.scheduler import tick
from mailgate.models import Lead, ProtocolEntry, utcnow
from mailgate.webui.leads.agenda import section_of

from .test_escalation import ESCALATING_DEALER, at, ingest_at, mails
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ANNA,
    app_fixture,
    body,
    lead_row,
    new_lead,
    team_fixture,
)
from .test_webui_lead_actions import act, flashes
from .webui_helpers import logged_in


@pytest.fixture
def lead(dealer: sessionmaker[Session]) -> int:
    with db.session_scope(dealer) as session:
        import_settings(session, ESCALATING_DEALER)
    return ingest_at(dealer, at("2026-11-30 08:00"))  # stage 1 Monday 12:00


def _log(factory: sessionmaker[Session], lead_id: int, when: datetime, outcome: str) -> None:
    with db.session_scope(factory) as session:
        cfg = load_dealer_config(session)
        log_contact(session, lead_id, ANNA, when, "phone", "", outcome=outcome, dealer=cfg)


@pytest.mark.parametrize("outcome", ["not_reached", "left_message"])
def test_an_attempt_is_not_the_answer_and_the_ladder_keeps_running(
    dealer: sessionmaker[Session], lead: int, outcome: str
) -> None:
    """Seed 000: "Result: Not on the phone … Follow-up activity": a call that did not reach
    the customer leaves the lead unanswered (status, clock), schedules a follow-up 4 working
    hours later (17:00 → Tuesday 11:00 over the night) and stage 1 still escalates."""
    _log(dealer, lead, at("2026-11-30 09:00"), outcome)
    with dealer() as session:
        row = session.get(Lead, lead)
        assert row.first_response_at is None and row.status == "assigned"
        assert row.follow_up_at == at("2026-11-30 13:00")
        assert row.next_due_at is not None
        actions = session.scalars(
            select(ProtocolEntry.action).where(ProtocolEntry.lead_id == lead)
        ).all()
    assert "contact_attempt" in actions and "contact" not in actions
    tick(dealer, now=at("2026-11-30 12:00"))
    assert [p for p, _, _ in mails(dealer, lead)] == ["stage1"]
    _log(dealer, lead, at("2026-11-30 17:00"), outcome)
    with dealer() as session:
        assert session.get(Lead, lead).follow_up_at == at("2026-12-01 11:00")


def test_a_reached_customer_counts_and_clears_the_follow_up(
    dealer: sessionmaker[Session], lead: int
) -> None:
    """Seed 000's ladder: "contacts" is reached only by a contact; it stops the reminders."""
    _log(dealer, lead, at("2026-11-30 09:00"), "not_reached")
    _log(dealer, lead, at("2026-11-30 10:00"), "reached")
    with dealer() as session:
        row = session.get(Lead, lead)
        assert row.status == "contacted" and row.first_response_at == at("2026-11-30 10:00")
        assert row.follow_up_at is None
    tick(dealer, now=at("2026-12-02 12:00"))
    assert mails(dealer, lead) == []


def test_an_unknown_outcome_is_refused(dealer: sessionmaker[Session], lead: int) -> None:
    with pytest.raises(ActionError, match="outcome"):
        _log(dealer, lead, at("2026-11-30 09:00"), "maybe")
    with dealer() as session:
        assert session.get(Lead, lead).follow_up_at is None


class _Row:
    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)


def test_my_day_keeps_a_lead_with_a_follow_up_due_today() -> None:
    """The follow-up keeps the lead in My day, even an answered lead (a later call attempt)."""
    now, end = at("2026-11-30 09:00"), at("2026-12-01 00:00")
    base = {"id": 1, "status": "contacted", "soon_at": None, "escalation_stage": 0}
    answered = _Row(**base, first_response_at=now, overdue_at=now, follow_up_at=now)
    assert section_of(answered, now, end) == "today"
    tomorrow = _Row(**base, first_response_at=now, overdue_at=now, follow_up_at=end)
    assert section_of(tomorrow, now, end) is None
    unanswered = _Row(
        **(base | {"status": "assigned"}),
        first_response_at=None,
        overdue_at=at("2026-12-02 10:00"),
        follow_up_at=at("2026-11-30 13:00"),
    )
    assert section_of(unanswered, now, end) == "today"


def test_the_lead_page_logs_an_attempt_in_german(team: sessionmaker[Session], app: Flask) -> None:
    """The web form's result field: "Kunde nicht erreicht" keeps the lead open and in My day."""
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{lead_id}")
    assert 'name="outcome"' in page and "Kunde nicht erreicht" in page
    page = act(anna, lead_id, "contact", {"channel": "phone", "outcome": "not_reached"})
    assert any(
        kind == "success" and "noch nicht beantwortet" in text for kind, text in flashes(page)
    )
    lead = lead_row(team, lead_id)
    assert lead.first_response_at is None and lead.follow_up_at is not None
    assert 'id="follow-up"' in page
    with team.begin() as session:  # stage 1 far away: only the follow-up brings it to My day
        later = utcnow() + timedelta(days=3)
        session.execute(update(Lead).where(Lead.id == lead_id).values(overdue_at=later))
        session.execute(
            update(Lead)
            .where(Lead.id == lead_id)
            .values(follow_up_at=datetime.now(UTC) + timedelta(minutes=1))
        )
    assert f"/leads/{lead_id}" in body(anna, "/my-day")


def test_a_hostile_outcome_gets_a_german_error_and_changes_nothing(
    team: sessionmaker[Session], app: Flask
) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    page = act(anna, lead_id, "contact", {"channel": "phone", "outcome": "<script>x</script>"})
    kinds = [kind for kind, _ in flashes(page)]
    assert "error" in kinds and "<script>x" not in page
    lead = lead_row(team, lead_id)
    assert lead.first_response_at is None and lead.follow_up_at is None


def test_the_rest_api_logs_contacts_with_their_outcome(dealer: sessionmaker[Session]) -> None:
    """The REST API has the same rule: ``outcome = not_reached`` leaves the lead unanswered
    with a follow-up, ``reached`` counts; unknown values are a 400 and change nothing."""
    from .test_api import bearer, leads, make_token
    from .webui_helpers import web_app

    with db.session_scope(dealer) as session:
        import_settings(session, ESCALATING_DEALER)
    client = web_app(dealer).test_client()
    (lead_id,) = leads(dealer, 1)
    token = make_token(dealer, "crm", ["read", "write"])
    url = f"/api/v1/leads/{lead_id}/contacts"
    for bad in ({"outcome": "maybe"}, {"channel": "fax"}, {"outcome": 1}, {"x": "y"}):
        assert client.post(url, json=bad, headers=bearer(token)).status_code == 400, bad
    with dealer() as session:
        assert session.get(Lead, lead_id).follow_up_at is None
    response = client.post(url, json={"outcome": "not_reached"}, headers=bearer(token))
    assert response.status_code == 200 and response.get_json()["status"] == "assigned"
    with dealer() as session:
        row = session.get(Lead, lead_id)
        assert row.first_response_at is None and row.follow_up_at is not None
    response = client.post(url, json={"outcome": "reached", "note": "ok"}, headers=bearer(token))
    assert response.status_code == 200 and response.get_json()["status"] == "contacted"
    with dealer() as session:
        assert session.get(Lead, lead_id).follow_up_at is None


def test_the_follow_up_time_is_a_dealer_setting_on_the_escalation_page(
    dealer: sessionmaker[Session],
) -> None:
    """``escalation.follow_up_after`` (default 4h) is set on the escalation settings page;
    a bad duration is shown at the field in German and nothing is saved."""
    from .test_webui_settings import errors_of, exported
    from .webui_helpers import ensure_user, post, web_app

    with db.session_scope(dealer) as session:
        import_settings(session, ESCALATING_DEALER)
    ensure_user(dealer, "ada@autohaus.example", "admin")
    admin = logged_in(web_app(dealer), "ada@autohaus.example")
    times = {"stage1": "4h", "reminder_before": "1h", "stage2": "24h", "stage2_resubmission": "8h"}
    page = admin.get("/settings/escalation").get_data(as_text=True)
    assert "Erneut versuchen nach einem Anruf ohne Kundenkontakt" in page
    assert 'name="follow_up_after-hours" value="4"' in page  # hours + minutes inputs
    assert post(admin, "/settings/escalation", times | {"follow_up_after": "2h"}).status_code == 302
    assert exported(dealer)["escalation"]["follow_up_after"] == "2h"
    html = post(admin, "/settings/escalation", times | {"follow_up_after": "zwei Stunden"})
    assert "zwei Stunden" in errors_of(html.get_data(as_text=True), "follow_up_after")
    assert exported(dealer)["escalation"]["follow_up_after"] == "2h"
