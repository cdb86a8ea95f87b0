"""The reports page as a PDF: same figures, scope, narrowing and language as the page."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.models import Lead, User, utcnow
from mailgate.webui.reports.pdf import MAX_COLUMNS, latin1

from .test_webui_reports import ADMIN, ANNA, BERT, CHEF, add_lead, cells, seed_team
from .webui_helpers import ensure_user, logged_in, web_app


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    """The page tests' leads, with a campaign, a service lead, a location and kinds."""
    seed_team(dealer)
    with db.session_scope(dealer) as session:
        leads = {lead.dedupe_key: lead for lead in session.scalars(select(Lead))}
        leads["report-1"].campaign = "812 - Angebotsanfrage"
        leads["report-2"].campaign = "812 - Angebotsanfrage"
        leads["report-3"].category = "service"
        leads["report-4"].location = "augsburg"
    return web_app(dealer)


def pdf_of(client: FlaskClient, query: str = "") -> PdfReader:
    response = client.get(f"/reports.pdf{query}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.data.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(response.data))


def _plain(text: str) -> str:
    """Spaces as one blank; the page's dash as the PDF's (core fonts have no en dash)."""
    return re.sub(r"\s+", " ", text.replace("\xa0", " ").replace("–", "-")).strip()


def text_of(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def lines_of(reader: PdfReader) -> list[str]:
    return [_plain(line) for line in text_of(reader).splitlines()]


def content_of(reader: PdfReader) -> str:
    """The pages' drawing operators, one string (charts are vector drawings in there)."""
    return "\n".join(page.get_contents().get_data().decode("latin-1") for page in reader.pages)


TABLES = ("sources", "kinds", "response", "ladder", "outcomes")


def assert_same_rows_as_page(client: FlaskClient, query: str = "") -> list[str]:
    """Every data row of every table on the page is a line of the PDF, cell for cell."""
    html = client.get(f"/reports{query}").get_data(as_text=True)
    lines = lines_of(pdf_of(client, query))
    for table in TABLES:
        if f'id="table-{table}"' not in html:
            continue
        for row in cells(html, f"table-{table}")[1:]:
            assert _plain(" ".join(row)) in lines, (table, row)
    return lines


def test_admin_pdf_has_title_and_every_table_of_the_page(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    reader = pdf_of(client)
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    lines = assert_same_rows_as_page(client)
    assert lines[:3] == ["Anfragebericht", "Autohaus Beispiel", lines[2]]
    assert lines[2].startswith("Anfragen mit Eingang vom") and lines[2].endswith(": 4.")
    assert "Filter: keine." in lines and "Alle Anfragen." in lines
    assert any(
        re.fullmatch(r"Erstellt von Ada Admin am \d\d\.\d\d\.\d{4} \d\d:\d\d\.", x) for x in lines
    )
    # the numbers themselves, as the page test works them out
    assert "Anna Schmidt 3 3 2,0 5,2 67 % (2/3)" in lines
    assert "Bert Brandt 1 0 - - 0 % (0/1)" in lines
    assert "Summe 4 3 0 0 0 1" in lines  # sales ladder totals
    assert "mobile.de 1 1 0 0 50 %" in lines
    weeks = [x for x in lines if re.fullmatch(r"\d\d\.\d\d\.\d\d( \d+){4}", x)]
    assert len(weeks) == 12 and sum(int(x.split()[-1]) for x in weeks) == 4  # per source
    kinds = [x for x in lines if re.fullmatch(r"\d\d\.\d\d\.\d\d( \d+){3}", x)]
    assert len(kinds) == 12 and sum(int(x.split()[-2]) for x in kinds) == 1  # one test drive
    text = text_of(reader)
    for heading in (
        "Anfragen je Quelle und Woche",
        "Anfragen je Art und Woche",
        "Erste Reaktion je Verkäufer",
        "Verkaufsfortschritt",
        "Gewonnen und verloren je Quelle",
    ):
        assert heading in text
    assert f"Seite 1 von {len(reader.pages)}" in text
    assert reader.metadata is not None and reader.metadata.title.startswith("Anfragebericht")


def test_charts_are_drawn_with_the_tables_numbers(app: Flask) -> None:
    content = content_of(pdf_of(logged_in(app, ADMIN)))
    # sales ladder: bars (14 units high) for received 4, contacted 3, won 1 - in that ratio
    ladder = content[content.index("(Verkaufsfortschritt) Tj") :]
    ladder = ladder[: ladder.index("(Gewonnen und verloren je Quelle) Tj")]
    widths = [float(w) for w in re.findall(r"[\d.]+ [\d.]+ ([\d.]+) 14 re B", ladder)]
    assert len(widths) == 3 and widths[0] / widths[2] == pytest.approx(4.0, rel=0.01)
    assert widths[1] / widths[2] == pytest.approx(3.0, rel=0.01)
    # line charts: one polyline of 12 points (11 segments) per source (3) and kind (2)
    polylines = re.findall(r"[\d.]+ [\d.]+ m(?: [\d.]+ [\d.]+ l){11} S", content)
    assert len(polylines) == 5
    # won/lost: mobile.de's won and lost bars, both as long as each other (1 and 1)
    outcomes = content[content.index("(Gewonnen und verloren je Quelle) Tj") :]
    bars = [float(w) for w in re.findall(r"[\d.]+ [\d.]+ ([\d.]+) 14 re B", outcomes)]
    assert len(bars) == 2 and bars[0] == bars[1] > 0


@pytest.mark.parametrize(
    ("who", "count", "scope", "absent"),
    [
        (ANNA, 3, "Ihre eigenen Anfragen.", ["Bert Brandt", "AutoScout24"]),
        (CHEF, 3, "Die Anfragen Ihres Teams.", ["Bert Brandt", "AutoScout24"]),
        (BERT, 1, "Ihre eigenen Anfragen.", ["Anna Schmidt", "Website", "mobile.de"]),
    ],
)
def test_each_role_gets_only_its_numbers(
    app: Flask, who: str, count: int, scope: str, absent: list[str]
) -> None:
    client = logged_in(app, who)
    lines = assert_same_rows_as_page(client)
    assert lines[2].endswith(f": {count}.") and scope in lines
    text = text_of(pdf_of(client))
    for name in absent:
        assert name not in text  # never a colleague's name or a source only he has
    if who == ANNA:
        assert "Anna Schmidt 3 3 2,0 5,2 67 % (2/3)" in lines
    if who == BERT:
        assert "Bert Brandt 1 0 - - 0 % (0/1)" in lines


@pytest.mark.parametrize(
    ("query", "count", "words"),
    [
        ("?campaign=812+-+Angebotsanfrage", 2, "Filter: Kampagne: 812 - Angebotsanfrage."),
        ("?channel=service", 1, "Filter: Kanal: Service."),
        ("?type=test_drive", 1, "Filter: Typ: Probefahrt."),
        ("?location=augsburg", 1, "Filter: Standort: augsburg."),
        ("?source=mobile.de&type=inquiry", 2, "Filter: Quelle: mobile.de; Typ: Anfrage."),
        ("?type=inquiry&location=augsburg", 1, "Filter: Typ: Anfrage; Standort: augsburg."),
    ],
)
def test_narrowing_applies_and_is_named_in_the_title(
    app: Flask, query: str, count: int, words: str
) -> None:
    client = logged_in(app, ADMIN)
    lines = assert_same_rows_as_page(client, query)
    assert lines[2].endswith(f": {count}.") and words in lines
    page = client.get(f"/reports{query}").get_data(as_text=True)
    assert f": {count}." in page  # the page narrows alike


def test_type_narrows_the_page_and_the_pdf_link_keeps_every_filter(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    page = client.get("/reports?type=test_drive&location=").get_data(as_text=True)
    assert ": 1." in page and '<option selected value="test_drive">Probefahrt</option>' in page
    link = re.search(r'href="(/reports\.pdf\?[^"]*)"', page)
    assert link is not None and "type=test_drive" in link.group(1) and "start=" in link.group(1)
    assert "Als PDF herunterladen" in page
    lines = lines_of(
        pdf_of(client, link.group(1).removeprefix("/reports.pdf").replace("&amp;", "&"))
    )
    assert lines[2].endswith(": 1.") and "Filter: Typ: Probefahrt." in lines


def test_english_pdf(app: Flask, dealer: sessionmaker[Session]) -> None:
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin", language="en")
    client = logged_in(app, ADMIN)
    lines = assert_same_rows_as_page(client, "?type=inquiry")
    assert lines[0] == "Lead report" and lines[2].startswith("Leads received")
    assert "Filters: Type: Inquiry." in lines and "All leads." in lines
    assert any(
        re.fullmatch(r"Generated by Ada Admin on \d{1,2} \w{3} \d{4}, \d\d:\d\d\.", x)
        for x in lines
    )
    assert "Anna Schmidt 2 2 1.5 1.9 100 % (2/2)" in lines  # the inquiries: 1 h and 2 h
    text = text_of(pdf_of(client))
    assert "Sales ladder" in text and "Page 1 of" in text and "Anfrage" not in text


def test_empty_period_gives_a_valid_pdf(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    reader = pdf_of(client, "?start=2020-01-06&end=2020-01-19")
    lines = lines_of(reader)
    assert lines[2].endswith(": 0.") and "06.01.2020" in lines[2]
    assert "Keine zugewiesenen Anfragen in diesem Zeitraum." in lines
    assert lines.count("Keine Anfragen in diesem Zeitraum.") == 2  # ladder, won/lost
    assert "06.01.20 0" in lines and "13.01.20 0" in lines  # weeks with no leads: total 0
    page = client.get("/reports?start=2020-01-06&end=2020-01-19")  # no salesperson: no bars
    assert page.status_code == 200 and ": 0." in page.get_data(as_text=True)


def test_bad_parameters_are_ignored_as_on_the_page(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    today = utcnow().date()
    for query in (
        "?start=gestern&end=x",
        "?campaign=gibt-es-nicht&channel=x&type=rocket&source=&location=mars",
        f"?start={today.isoformat()}&end={(today - timedelta(days=5)).isoformat()}",
    ):
        lines = assert_same_rows_as_page(client, query)
        assert lines[2].endswith(": 4.") and "Filter: keine." in lines, query


def test_pdf_needs_a_login(app: Flask) -> None:
    response = app.test_client().get("/reports.pdf")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_characters_outside_latin1_are_mapped_not_fatal(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    assert latin1("24.890 € – „gut“ … → Grüße") == '24.890 EUR - "gut" ... -> Grüße'
    assert latin1("漢字") == "??"
    with db.session_scope(dealer) as session:
        lead = session.scalars(select(Lead).where(Lead.dedupe_key == "report-4")).one()
        lead.campaign = "Frühling – 0 % → 0 € …"
    client = logged_in(app, ADMIN)
    query = "?campaign=Fr%C3%BChling+%E2%80%93+0+%25+%E2%86%92+0+%E2%82%AC+%E2%80%A6"
    lines = lines_of(pdf_of(client, query))
    assert "Filter: Kampagne: Frühling - 0 % -> 0 EUR ...." in lines and lines[2].endswith(": 1.")
    # umlauts stay umlauts, in the tables and in the charts' text alike
    with db.session_scope(dealer) as session:
        bert = session.scalars(select(User).where(User.email == BERT)).one()
        bert.name = "Bört Brändt – Süd"
    reader = pdf_of(client)
    assert "Bört Brändt - Süd 1 0 - - 0 % (0/1)" in lines_of(reader)
    assert content_of(reader).count("(Bört Brändt - Süd) Tj") == 2  # table cell, chart label


def test_many_sources_split_the_week_table_and_repeat_the_weeks(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    for n in range(MAX_COLUMNS + 1):
        add_lead(dealer, ANNA, 100 + n, days_ago=1, answered_after_h=1, source=f"portal-{n:02d}")
    lines = lines_of(pdf_of(logged_in(app, ADMIN)))
    # 3 + 10 sources + total = 14 number columns: two parts, each with the week column
    assert "Anfragen je Quelle und Woche (1/2)" in lines
    assert "Anfragen je Quelle und Woche (2/2)" in lines
    week_rows = [x for x in lines if re.fullmatch(r"\d\d\.\d\d\.\d\d( \d+)+", x)]
    assert len(week_rows) == 2 * 12 + 12  # sources in two parts, then kinds
