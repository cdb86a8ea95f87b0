""" "My day": a salesperson's own leads, overdue first, then resubmissions, then the rest of
today — the rule (pure) and the page (test client, both databases)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.escalation.ladder import NEVER, RESUBMISSION
from mailgate.models import Lead, utcnow
from mailgate.webui.leads.agenda import plan_day, section_of

from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ANNA,
    BEN,
    POOL,
    app_fixture,
    body,
    new_lead,
    team_fixture,
)
from .webui_helpers import logged_in

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TONIGHT = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # local midnight in Berlin


@dataclass
class FakeLead:
    id: int
    status: str = "assigned"
    first_response_at: datetime | None = None
    soon_at: datetime | None = None
    overdue_at: datetime | None = None
    escalation_stage: int = 0


def test_sections_and_order_of_the_day() -> None:
    hour = timedelta(hours=1)
    leads = [
        FakeLead(1, overdue_at=NOW - hour),  # overdue for an hour
        FakeLead(2, overdue_at=NOW - 5 * hour),  # overdue longer: first
        FakeLead(3, overdue_at=NOW + 3 * hour),  # later today
        FakeLead(4, overdue_at=NOW + hour),  # sooner today: before 3
        FakeLead(5, overdue_at=NOW + 20 * hour),  # tomorrow: not today
        FakeLead(6, first_response_at=NOW - hour, overdue_at=NOW - hour),  # answered
        FakeLead(7, escalation_stage=RESUBMISSION, soon_at=NOW + 2 * hour),  # resubmit today
        FakeLead(8, escalation_stage=RESUBMISSION, soon_at=NOW - 48 * hour),  # two days late
        FakeLead(9, escalation_stage=RESUBMISSION, soon_at=NOW + 30 * hour),  # later
        FakeLead(10, escalation_stage=NEVER, overdue_at=NOW - hour),  # junk never escalates
        FakeLead(11, status="closed", overdue_at=NOW - hour),
        FakeLead(12, status="offer", first_response_at=NOW - 9 * hour, overdue_at=NOW),
    ]
    agenda = plan_day(leads, NOW, TONIGHT)
    assert [lead.id for lead in agenda.overdue] == [2, 1]
    assert [lead.id for lead in agenda.resubmission] == [8, 7]
    assert [lead.id for lead in agenda.today] == [4, 3]
    assert len(agenda) == 6
    assert section_of(FakeLead(13, overdue_at=TONIGHT), NOW, TONIGHT) is None  # midnight: tomorrow


def test_my_day_page_shows_only_my_due_leads_in_working_order(
    team: sessionmaker[Session], app: Flask
) -> None:
    now = utcnow()
    late, soon, answered, resubmit = (new_lead(team, n, ANNA) for n in (1, 2, 3, 4))
    bens = new_lead(team, 5, BEN)
    new_lead(team, 6, POOL)
    with team.begin() as session:

        def due(lead_id: int, **values: object) -> None:
            session.execute(update(Lead).where(Lead.id == lead_id).values(**values))

        hour = timedelta(hours=1)
        due(late, overdue_at=now - 3 * hour, soon_at=now - 4 * hour)
        due(soon, overdue_at=now + timedelta(minutes=5), soon_at=now)
        due(answered, overdue_at=now - hour, first_response_at=now)
        due(bens, overdue_at=now - 9 * hour, soon_at=now - 10 * hour)
        due(
            resubmit,
            escalation_stage=RESUBMISSION,
            soon_at=now - timedelta(minutes=1),
            overdue_at=now - timedelta(minutes=1),
            first_response_at=now - 48 * hour,
        )
    page = body(logged_in(app, ANNA), "/my-day")
    assert "<h1>Mein Tag" in page
    sections = {
        name: re.findall(r'href="/leads/(\d+)"', part)
        for name, part in re.findall(
            r'<section aria-labelledby="h-(\w+)"(.*?)</section>', page, re.S
        )
    }
    assert sections["overdue"] == [str(late)]
    assert sections["resubmission"] == [str(resubmit)]
    midnight = (now.astimezone(BERLIN) + timedelta(days=1)).replace(hour=0, minute=0, second=0)
    expected_today = [str(soon)] if now + timedelta(minutes=5) < midnight else []
    assert sections["today"] == expected_today
    assert f'href="/leads/{answered}"' not in page and f'href="/leads/{bens}"' not in page
    assert "Anfragen im Pool: 1" in page
    ben_page = body(logged_in(app, BEN), "/my-day")
    assert f'href="/leads/{bens}"' in ben_page and f'href="/leads/{late}"' not in ben_page
    assert app.test_client().get("/my-day").status_code == 302  # login first
