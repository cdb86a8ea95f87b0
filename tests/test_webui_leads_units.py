"""Pure parts of the lead list: filter parsing, search terms, CSV cells (no database)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from mailgate.webui.leads.csvexport import BOM, csv_lines, defuse, german_datetime, german_number
from mailgate.webui.leads.filters import Filters, parse
from mailgate.webui.leads.query import like_pattern, search_terms


def test_parse_keeps_valid_values_and_drops_the_rest() -> None:
    f = parse(
        {
            "q": "  Fritz   Fröhlich ",
            "kind": "test_drive",
            "status": "open",
            "assignee": "12",
            "date_from": "2026-11-01",
            "date_to": "gestern",
            "due": "overdue",
            "review": "1",
            "sort": "customer",
        }
    )
    assert f == Filters(
        q="Fritz Fröhlich",
        kind="test_drive",
        status="open",
        assignee="12",
        date_from=date(2026, 11, 1),
        due="overdue",
        review=True,
        sort="customer",
    )
    junk = parse(
        {"kind": "x", "status": "gone", "assignee": "1 OR 1=1", "due": "red", "sort": "id"}
    )
    assert junk == Filters() and not junk.active and junk.args() == {}
    assert parse({"q": "x" * 500}).q == "x" * 100


def test_args_round_trip_without_defaults() -> None:
    f = Filters(q="golf", review=True, date_to=date(2026, 11, 30), sort="newest")
    assert f.args() == {"q": "golf", "review": "1", "date_to": "2026-11-30"}
    assert parse(f.args()) == f and f.active


def test_search_terms_words_and_phone_numbers() -> None:
    assert search_terms("Fritz  FRÖHLICH") == ["fritz", "fröhlich"]
    assert search_terms("0170 1234567") == ["491701234567"]
    assert search_terms("+43 1 5335555", "DE") == ["4315335555"]  # Vienna, any region
    assert search_terms("1234567") == ["1234567"]  # part of a number: the digits
    assert search_terms("12345") == ["12345"]  # too short for a phone: a word
    assert search_terms("   ") == []


def test_like_pattern_escapes_wildcards() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_csv_cells_for_german_excel() -> None:
    assert [defuse(v) for v in ("=1+1", "+49 170", "-5", "@SUM(A1)", "\tx", "Anna")] == [
        "'=1+1",
        "'+49 170",
        "'-5",
        "'@SUM(A1)",
        "'\tx",
        "Anna",
    ]
    berlin = ZoneInfo("Europe/Berlin")
    assert german_datetime(datetime(2026, 1, 5, 23, 30, tzinfo=UTC), berlin) == "06.01.2026 00:30"
    assert german_datetime(None, berlin) == ""
    assert (german_number(18990.5), german_number(0.857), german_number(12)) == (
        "18990,50",
        "0,86",
        "12",
    )
    text = "".join(csv_lines(["Name", "Modell"], [["Jörg", "A; B"], ["=cmd", None]]))
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert rows == [["Name", "Modell"], ["Jörg", "A; B"], ["'=cmd", ""]]
