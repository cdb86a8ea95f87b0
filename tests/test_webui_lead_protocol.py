"""The lead's protocol in the reader's language: German by default, English on request.

Lines are written by the real service functions through the lead page's
actions; lines from before phrases existed keep their English text, and the
migration that introduced phrases converts those it can read.  Both databases.
"""

from __future__ import annotations

import html
import importlib
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import Engine, null, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import ProtocolEntry, User, utcnow

from .distribution_helpers import form_mail, ingest, setup, team_toml
from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    BEN,
    app_fixture,
    body,
    new_lead,
    team_fixture,
)
from .test_webui_lead_actions import act, local_input
from .webui_helpers import logged_in

BERLIN = ZoneInfo("Europe/Berlin")


def protocol_cells(page: str) -> list[str]:
    """The "Details" column of the protocol table, as text."""
    section = page.split('id="h-protocol"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r'<td data-label="(?:Details|Einzelheiten)"[^>]*>(.*?)</td>', section, re.S)
    return [html.unescape(c).strip() for c in cells]


def test_protocol_is_worded_in_the_readers_language(
    team: sessionmaker[Session], app: Flask
) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    act(anna, lead_id, "contact", {"channel": "phone", "note": "Rückruf am Abend"})
    when = (datetime.now(BERLIN) + timedelta(days=2)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )
    act(anna, lead_id, "resubmission", {"when": local_input(when)})
    ada = logged_in(app, ADA)
    act(ada, lead_id, "reassign", {"to": BEN, "note": "spricht Italienisch"})

    german = protocol_cells(body(ada, f"/leads/{lead_id}"))
    # the intake line: where the lead came from, in words; never the parser's name
    assert "als Anfrage; Quelle nicht erkannt" in german, german
    assert not any("generic" in c or "unknown" in c for c in german), german
    assert "Kontakt erfasst: Telefonat; Notiz: Rückruf am Abend" in german
    assert f"Wiedervorlage am {when:%d.%m.%Y} 09:30" in german
    assert f"von {ANNA} an {BEN}; Notiz: spricht Italienisch" in german
    assert f"Hinweis an {BEN} eingereiht" in german
    assert not any("contact logged" in c or "queued" in c for c in german), german

    with team.begin() as session:
        session.execute(update(User).where(User.email == ADA).values(language="en"))
    english = protocol_cells(body(ada, f"/leads/{lead_id}"))
    assert "contact logged: Phone call; note: Rückruf am Abend" in english
    assert f"resubmission on {when.day} {when:%b %Y}, 09:30" in english
    assert f"from {ANNA} to {BEN}; note: spricht Italienisch" in english
    assert "as Inquiry; the source was not recognised" in english


def test_the_intake_line_names_the_source_not_the_parser(
    team: sessionmaker[Session], app: Flask
) -> None:
    """Rows stored as "parsed by <parser> as <source>/<kind>" (every intake line ever
    written) read as where the lead came from and what it asks for."""
    lead_id = new_lead(team, 3, ANNA)
    stored = [
        {"code": "parsed", "parser": "mobile_de", "source": "mobile.de", "kind": "test_drive"},
        {"code": "parsed", "parser": "oem_opel", "source": "oem:opel", "kind": "inquiry"},
        {"code": "parsed", "parser": "generic", "source": "unknown", "kind": "inquiry"},
    ]
    with team.begin() as session:
        for params in stored:
            session.add(
                ProtocolEntry(
                    lead_id=lead_id,
                    at=utcnow(),
                    actor="system",
                    action="received",
                    detail="parsed by x as y/z",
                    params=[params],
                )
            )
    anna = logged_in(app, ANNA)
    body(anna, f"/leads/{lead_id}")  # her first look goes into the protocol
    page = body(anna, f"/leads/{lead_id}")
    cells = protocol_cells(page)
    assert "über mobile.de als Probefahrt" in cells
    assert "über Hersteller: Opel als Anfrage" in cells
    assert "als Anfrage; Quelle nicht erkannt" in cells
    joined = " ".join(cells)
    for code in ("mobile_de", "oem_opel", "generic", "oem:opel", "test_drive", "unknown"):
        assert code not in joined, code
    # who acted: colleagues by their names (Anna's first look), the system as "System"
    who = re.findall(r'<td data-label="Wer"[^>]*>([^<]*)</td>', page)
    assert any(w.startswith("Anna") for w in who) and "System" in who and ANNA not in who, who


def test_lines_without_phrases_show_their_stored_text(
    team: sessionmaker[Session], app: Flask
) -> None:
    lead_id = new_lead(team, 2, ANNA)
    with team.begin() as session:
        session.add(
            ProtocolEntry(
                lead_id=lead_id,
                at=utcnow(),
                actor="import",
                action="contact",
                detail="Anruf laut Altsystem <b>",
            )
        )
    cells = protocol_cells(body(logged_in(app, ANNA), f"/leads/{lead_id}"))
    assert "Anruf laut Altsystem <b>" in cells  # as stored, and escaped (no tag)


def test_the_migration_reads_old_english_lines_back_as_phrases(
    engine: Engine, factory: sessionmaker[Session]
) -> None:
    """Rows written before ``params`` existed get phrases when their English fits one
    (migration 0008's conversion, run on rows whose phrases were taken away)."""
    migration = importlib.import_module("mailgate.migrations.versions.0008_protocol_params")
    setup(factory, team_toml())
    ingest(factory, form_mail(1))
    with factory() as session:
        written = {e.id: e.params for e in session.scalars(select(ProtocolEntry))}
        lead_id = session.scalar(select(ProtocolEntry.lead_id))
    assert written and all(written.values())
    table = ProtocolEntry.__table__
    with engine.begin() as conn:
        conn.execute(table.update().values(params=null()))  # as before migration 0008
        conn.execute(
            table.insert().values(
                lead_id=lead_id, at=utcnow(), actor="x", action="note", detail="free text"
            )
        )
        migration.convert(conn)
    with factory() as session:
        rows = list(session.scalars(select(ProtocolEntry).order_by(ProtocolEntry.id)))
    converted = {e.id: e.params for e in rows if e.id in written}
    flat = {i: p for i, p in written.items() if all("reason" not in x for x in p)}
    assert flat and all(converted[i] == p for i, p in flat.items())  # read back exactly
    assert all(converted.values())  # chains come back with the reason as plain text
    assert rows[-1].params is None and rows[-1].detail == "free text"
