"""Issue 21 #7 on the reports: chart axes in the user's notation, tables in scrolling
wrappers, source display names, and CSV files whose header names each column once."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from mailgate.webui.reports.svg import Series, axis_steps, line_chart

from .test_webui_reports import ADMIN, add_lead, seed_team
from .webui_helpers import ensure_user, logged_in, web_app

TABLES = ("sources", "kinds", "response", "ladder", "outcomes")


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    seed_team(dealer)
    return web_app(dealer)


def csv_rows(client: FlaskClient, path: str) -> list[list[str]]:
    response = client.get(path)
    assert response.status_code == 200, path
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))


def axis_labels(html: str, chart: str) -> list[str]:
    """The y axis' numbers of one line chart (the texts right-aligned at the axis)."""
    svg = re.search(rf'<svg[^>]*aria-labelledby="{chart}-title.*?</svg>', html, re.S)
    assert svg, chart
    return re.findall(r'<text x="38\.0" [^>]*text-anchor="end">([^<]+)</text>', svg[0])


def test_round_axis_steps() -> None:
    assert axis_steps(25) == 5  # 5, 10, 15 … rather than 6.25, 12.5 …
    assert axis_steps(50) == 5 and axis_steps(2.5) == 5
    assert axis_steps(20) == 4 and axis_steps(100) == 4
    assert axis_steps(1) == 4  # 0.25 steps: no round fifth either


def test_line_chart_writes_its_axis_with_the_given_notation() -> None:
    chart = str(
        line_chart(
            "t",
            "T",
            "D",
            ["a", "b"],
            [Series("s", [0, 1])],
            fmt=lambda v: f"<{v:.2f}>".replace(".", ","),
        )
    )
    assert "&lt;0,25&gt;" in chart and "&lt;1,00&gt;" in chart and "0.25" not in chart


def test_chart_axes_in_german_and_english_notation(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    german = logged_in(app, ADMIN).get("/reports").get_data(as_text=True)
    labels = axis_labels(german, "chart-sources")  # one or two leads a week per source
    assert labels in (["0", "0,25", "0,5", "0,75", "1"], ["0", "0,5", "1", "1,5", "2"])
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin", language="en")
    english = logged_in(app, ADMIN).get("/reports").get_data(as_text=True)
    assert axis_labels(english, "chart-sources") == [x.replace(",", ".") for x in labels]


def test_every_table_scrolls_in_its_own_labelled_wrapper(app: Flask) -> None:
    html = logged_in(app, ADMIN).get("/reports").get_data(as_text=True)
    for name in TABLES:
        wrapper = re.search(
            rf'<div class="table-responsive report-table" tabindex="0" role="region" '
            rf'aria-labelledby="caption-{name}">\s*<table class="table table-sm[^"]*" '
            rf'id="table-{name}">\s*<caption id="caption-{name}">',
            html,
        )
        assert wrapper, name  # keyboard users can scroll it; screen readers hear its caption
    assert "report-pair" not in html  # no chart beside a table squeezing it


def test_sources_by_display_name_in_tables_charts_csv_and_the_filter(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    add_lead(dealer, "anna@autohaus.example", 10, days_ago=1, answered_after_h=1, source="unknown")
    add_lead(dealer, "anna@autohaus.example", 11, days_ago=1, answered_after_h=1, source="oem:vw")
    client = logged_in(app, ADMIN)
    html = client.get("/reports").get_data(as_text=True)
    text = re.sub(r'(href|value|id)="[^"]*"', "", html)
    for code in ("oem:vw", "autoscout24", ">unknown<", ">website<"):
        assert code not in text, code
    assert "Hersteller: VW" in html and "Unbekannt" in html
    assert '<option value="oem:vw">Hersteller: VW</option>' in html  # the narrowing select
    header = csv_rows(client, "/reports.csv?table=sources")[0]
    assert "Hersteller: VW" in header and "Unbekannt" in header and "oem:vw" not in header
    ladder = csv_rows(client, "/reports.csv?table=ladder")
    assert {row[0] for row in ladder[1:-1]} == {
        "mobile.de", "AutoScout24", "Website", "Unbekannt", "Hersteller: VW"
    }  # fmt: skip


def test_no_report_csv_repeats_a_column_name(app: Flask, dealer: sessionmaker[Session]) -> None:
    # two spellings of one source show the same name: the header tells them apart
    add_lead(dealer, "anna@autohaus.example", 12, days_ago=1, answered_after_h=1, source="Website")
    client = logged_in(app, ADMIN)
    for table in TABLES:
        header = csv_rows(client, f"/reports.csv?table={table}")[0]
        assert len(header) == len(set(header)), (table, header)
    header = csv_rows(client, "/reports.csv?table=sources")[0]
    assert "Website (website)" in header and "Website (Website)" in header


def test_the_lead_list_csv_names_each_column_once(app: Flask) -> None:
    """The walk-through found "Fälligkeit" twice: the due time and the due state."""
    header = csv_rows(logged_in(app, ADMIN), "/leads/export.csv")[0]
    assert len(header) == len(set(header)), header
    assert header.index("Fällig am") + 1 == header.index("Fälligkeit")
