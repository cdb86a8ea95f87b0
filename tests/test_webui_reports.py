"""The reports page and its CSV through the test client: numbers, scope per role, range."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.models import Lead, User, utcnow

from .webui_helpers import ensure_user, logged_in, web_app

ADMIN, ANNA, CHEF, BERT = (
    "admin@autohaus.example",
    "anna@autohaus.example",
    "chef@autohaus.example",
    "bert@autohaus.example",
)


def add_lead(
    factory: sessionmaker[Session],
    owner: str,
    n: int,
    *,
    days_ago: float,
    answered_after_h: float | None,
    source: str = "mobile.de",
    kind: str = "inquiry",
    close_reason: str | None = None,
) -> int:
    """A lead with exact times (the example dealer has no opening hours: time runs on)."""
    received = utcnow() - timedelta(days=days_ago)
    with db.session_scope(factory) as session:
        owner_id = session.scalar(select(User.id).where(User.email == owner))
        lead = Lead(
            dedupe_key=f"report-{n}",
            reply_token=f"report-token-{n}",
            assignee_id=owner_id,
            source=source,
            kind=kind,
            status="closed" if close_reason else "contacted",
            received_at=received,
            first_response_at=(
                None if answered_after_h is None else received + timedelta(hours=answered_after_h)
            ),
            close_reason=close_reason,
        )
        session.add(lead)
        session.flush()
        return lead.id


def seed_team(dealer: sessionmaker[Session]) -> None:
    """Ada (admin), Anna and Bert (salespeople), Carl (supervisor) and five leads with exact
    times (shared with the PDF tests)."""
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin")
    ensure_user(dealer, ANNA, "salesperson", name="Anna Schmidt", supervisor_email=CHEF)
    ensure_user(dealer, CHEF, "supervisor", name="Carl Chef")
    ensure_user(dealer, BERT, "salesperson", name="Bert Brandt")
    add_lead(dealer, ANNA, 1, days_ago=3, answered_after_h=1, close_reason="sold")
    add_lead(dealer, ANNA, 2, days_ago=4, answered_after_h=2, close_reason="no_interest")
    add_lead(dealer, ANNA, 3, days_ago=5, answered_after_h=6, source="website", kind="test_drive")
    add_lead(dealer, BERT, 4, days_ago=2, answered_after_h=None, source="autoscout24")
    add_lead(dealer, BERT, 5, days_ago=400, answered_after_h=1)  # outside the default range


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    seed_team(dealer)
    return web_app(dealer)


def cells(html: str, table_id: str) -> list[list[str]]:
    """The rows of one table as lists of cell texts (tags stripped)."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert table, f"no table {table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)
    return [
        [
            re.sub(r"<[^>]+>|\s+", " ", c).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)
        ]
        for r in rows
    ]


def test_admin_sees_all_leads_with_charts_and_matching_tables(app: Flask) -> None:
    html = logged_in(app, ADMIN).get("/reports").get_data(as_text=True)
    assert ": 4." in html  # four leads in the last twelve weeks
    assert html.count('role="img"') == 5 and '<title id="chart-sources-title">' in html
    response = {row[0]: row for row in cells(html, "table-response")[1:]}
    # Anna: 1 h, 2 h, 6 h -> median 2,0, p90 rank 1.8 -> 2 + 0.8 * 4 = 5,2
    assert response["Anna Schmidt"][1:5] == ["3", "3", "2,0", "5,2"]
    assert response["Anna Schmidt"][5].endswith("(2/3)")  # stage 1 after 4 h: 6 h was late
    assert response["Bert Brandt"][5].endswith("(0/1)")  # unanswered, stage 1 passed
    assert response["Bert Brandt"][1:5] == ["1", "0", "–", "–"]
    outcomes = {row[0]: row for row in cells(html, "table-outcomes")[1:]}
    assert outcomes["mobile.de"][1:5] == ["1", "1", "0", "0"]
    assert outcomes["mobile.de"][5] == "50 %"
    assert outcomes["AutoScout24"][1:5] == ["0", "0", "0", "1"]  # display names, not codes
    sources = cells(html, "table-sources")
    assert sources[0][1:] == ["mobile.de", "AutoScout24", "Website", "Summe"]
    assert sum(int(row[-1]) for row in sources[1:]) == 4


def test_sales_ladder_counts_the_leads_that_reached_each_step(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    with db.session_scope(dealer) as session:
        leads = {lead.dedupe_key: lead for lead in session.scalars(select(Lead))}
        leads["report-1"].offer_at = utcnow()  # sold after an offer, no test drive
        leads["report-3"].test_drive_at = utcnow()
        leads["report-3"].status = "test_drive"
    client = logged_in(app, ADMIN)
    html = client.get("/reports").get_data(as_text=True)
    table = cells(html, "table-ladder")
    assert table[0] == [
        "Quelle", "eingegangen", "kontaktiert", "Probefahrt", "Angebot", "Kaufvertrag", "gewonnen"
    ]  # fmt: skip
    rows = {row[0]: row[1:] for row in table[1:]}
    assert rows["mobile.de"] == ["2", "2", "0", "1", "0", "1"]  # sold counts as won
    assert rows["Website"] == ["1", "1", "1", "0", "0", "0"]
    assert rows["AutoScout24"] == ["1", "0", "0", "0", "0", "0"]  # never answered
    assert rows["Summe"] == ["4", "3", "1", "1", "0", "1"]
    assert '<title id="chart-ladder-title">' in html
    exported = client.get("/reports.csv?table=ladder").get_data(as_text=True)
    lines = list(csv.reader(io.StringIO(exported.lstrip("\ufeff")), delimiter=";"))
    assert lines[0][1] == "eingegangen" and lines[-1] == ["Summe", "4", "3", "1", "1", "0", "1"]


def test_reports_narrow_by_source_campaign_channel_and_location(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    with db.session_scope(dealer) as session:
        leads = {lead.dedupe_key: lead for lead in session.scalars(select(Lead))}
        leads["report-1"].campaign = "812 - Angebotsanfrage"
        leads["report-2"].campaign = "812 - Angebotsanfrage"
        leads["report-3"].category = "service"
        leads["report-4"].location = "augsburg"
    client = logged_in(app, ADMIN)
    by_campaign = client.get("/reports?campaign=812+-+Angebotsanfrage").get_data(as_text=True)
    assert ": 2." in by_campaign
    chosen = re.search(r"<option selected value=\"([^\"]+)\">", by_campaign)
    assert chosen is not None and chosen.group(1) == "812 - Angebotsanfrage"
    csv_link = re.search(r'href="(/reports.csv\?table=ladder[^"]*)"', by_campaign)
    assert csv_link is not None and "campaign=812" in csv_link.group(1)  # the CSV keeps it
    assert ": 1." in client.get("/reports?channel=service").get_data(as_text=True)
    assert ": 1." in client.get("/reports?location=augsburg").get_data(as_text=True)
    assert ": 1." in client.get("/reports?source=website").get_data(as_text=True)
    ignored = client.get("/reports?campaign=gibt-es-nicht&channel=x").get_data(as_text=True)
    assert ": 4." in ignored  # unknown values narrow nothing
    exported = client.get("/reports.csv?table=ladder&campaign=812+-+Angebotsanfrage")
    lines = list(
        csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff")), delimiter=";")
    )
    assert lines[-1][:2] == ["Summe", "2"]


def test_each_role_sees_only_its_scope(app: Flask) -> None:
    anna = logged_in(app, ANNA).get("/reports").get_data(as_text=True)
    assert ": 3." in anna and "Bert Brandt" not in anna and "Ihre eigenen Anfragen." in anna
    chef = logged_in(app, CHEF).get("/reports").get_data(as_text=True)
    assert ": 3." in chef and "Anna Schmidt" in chef and "Bert Brandt" not in chef
    bert = logged_in(app, BERT).get("/reports").get_data(as_text=True)
    assert ": 1." in bert and "Anna Schmidt" not in bert
    assert "AutoScout24" in bert and "Website" not in bert


def test_reports_need_a_login(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/reports").status_code == 302
    assert client.get("/reports.csv?table=sources").status_code == 302


def test_date_range_picks_the_leads_and_rejects_a_reversed_range(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    today = utcnow().date()
    narrow = client.get(
        f"/reports?start={(today - timedelta(days=600)).isoformat()}"
        f"&end={(today - timedelta(days=300)).isoformat()}"
    ).get_data(as_text=True)
    assert ": 1." in narrow
    wrong = client.get(
        f"/reports?start={today.isoformat()}&end={(today - timedelta(days=5)).isoformat()}"
    ).get_data(as_text=True)
    assert "Das Ende liegt vor dem Anfang." in wrong and ": 4." in wrong  # default range
    garbage = client.get("/reports?start=gestern&end=x")
    assert garbage.status_code == 200 and ": 4." in garbage.get_data(as_text=True)
    for far in ("start=0001-01-01", "end=9999-12-31", "start=0001-01-01&end=9999-12-31"):
        page = client.get(f"/reports?{far}")
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and "Bitte ein Datum zwischen" in text, far
        assert ": 4." in text  # the default range, not the years the arithmetic cannot hold


def test_csv_export_for_german_excel(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    response = client.get("/reports.csv?table=response")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.data
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Verkäufer:in" and rows[0][3] == "Median (Arbeitsstunden)"
    anna = next(row for row in rows if row[0] == "Anna Schmidt")
    # stage 1 is 4 h (default): the 6 h answer was late -> 2 of 3 before stage 1
    assert anna[1:8] == ["3", "3", "2,0", "5,2", "2", "3", "67"]
    outcomes = client.get("/reports.csv?table=outcomes").data.decode("utf-8-sig")
    assert "mobile.de;1;1;0;0;50" in outcomes
    weeks = list(
        csv.reader(
            io.StringIO(client.get("/reports.csv?table=kinds").data.decode("utf-8-sig")),
            delimiter=";",
        )
    )
    assert weeks[0] == ["Woche ab", "Anfrage", "Probefahrt", "Summe"]
    assert len(weeks) == 1 + 12
    assert client.get("/reports.csv?table=nope").status_code == 404


def test_bert_cannot_export_annas_numbers(app: Flask) -> None:
    body = logged_in(app, BERT).get("/reports.csv?table=response").data.decode("utf-8-sig")
    assert "Anna" not in body and "Bert Brandt" in body


def test_english_report(app: Flask, dealer: sessionmaker[Session]) -> None:
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin", language="en")
    html = logged_in(app, ADMIN).get("/reports").get_data(as_text=True)
    assert "Leads per source and week" in html and "Download as CSV" in html
    response = {row[0]: row for row in cells(html, "table-response")[1:]}
    assert response["Anna Schmidt"][3:5] == ["2.0", "5.2"]
