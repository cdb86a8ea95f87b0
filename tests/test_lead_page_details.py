"""Details entered are shown (issue 20 item 11): what a manual lead records - date of birth,
the next vehicle's usage, the customer's interests, his current vehicle (not as a trade-in) -
appears on the lead page, and the source is named, never its code.  Both databases."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.labels import source_label
from mailgate.models import Lead

from .distribution_helpers import ingest
from .test_source_feedback import OPEL_LEAD
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    app_fixture,
    body,
    team_fixture,
)
from .test_webui_manual_lead import FORM, submit
from .webui_helpers import logged_in


def section(page: str, heading: str) -> str:
    """The text of the page's section under ``heading`` (tags removed)."""
    match = re.search(rf"<h2[^>]*>{re.escape(heading)}</h2>(.*?)</section>", page, re.S)
    assert match is not None, heading
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_a_manual_leads_details_are_on_its_page(team: sessionmaker[Session], app: Flask) -> None:
    anna = logged_in(app, ANNA)
    assert submit(anna, {**FORM, "keep": "y"}).status_code == 302
    with team() as session:
        lead_id = session.scalar(select(Lead.id))
    page = body(anna, f"/leads/{lead_id}")
    customer = section(page, "Kunde")
    assert "Geburtsdatum 02.03.1985" in customer
    link = re.search(r'<a href="(/customers/\d+)" id="customer-file-link">', page)
    assert link is not None and "Kundenakte" in customer
    assert "Karla" in body(anna, link.group(1))  # her customer file opens for her
    inquiry = section(page, "Anfrage")
    assert "Nächstes Fahrzeug Finanzierung" in inquiry
    assert "Interessiert an" in inquiry and "Probefahrt" in inquiry and "Prospekt" in inquiry
    assert f"Quelle {source_label('Walk-in')} (Herbstausstellung 2026)" in inquiry
    assert "Erkannt von Hand erfasst" in inquiry and "manual" not in inquiry
    current = section(page, "Aktuelles Fahrzeug")
    assert "Opel" in current and "Corsa" in current
    assert "<h2>Inzahlungnahme</h2>" not in page
    for code in ("financing", "test_drive", "brochure"):
        assert f">{code}<" not in page and f" {code} " not in inquiry


def test_a_sources_name_is_shown_not_its_code(team: sessionmaker[Session], app: Flask) -> None:
    ingest(team, OPEL_LEAD)
    with team() as session:
        lead_id = session.scalar(select(Lead.id))
    page = body(logged_in(app, ADA), f"/leads/{lead_id}")
    inquiry = section(page, "Anfrage")
    assert "Quelle Hersteller: Opel" in inquiry and "oem:opel" not in inquiry
    assert "Erkannt automatisch aus der E-Mail" in inquiry
    assert "oem_opel" not in inquiry and "Parser" not in inquiry and "Sicherheit" not in inquiry
