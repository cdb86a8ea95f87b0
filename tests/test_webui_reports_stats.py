"""Report statistics and charts, pure: known inputs with hand-computed results."""

from __future__ import annotations

import statistics
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailgate.escalation.calendar import WorkingCalendar
from mailgate.webui.reports.forms import default_range
from mailgate.webui.reports.stats import (
    Outcomes,
    ResponseRow,
    median,
    outcomes_by_source,
    per_week,
    percentile,
    response_stats,
    top_keys,
    week_start,
    weeks_between,
    working_hours,
)
from mailgate.webui.reports.svg import Series, bar_chart, line_chart, nice_max

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_8_TO_18 = {d: ["08:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
SVG = "{http://www.w3.org/2000/svg}"


def calendar(**kwargs: object) -> WorkingCalendar:
    return WorkingCalendar.from_settings(
        WEEKDAYS_8_TO_18, timezone="Europe/Berlin", country="DE", **kwargs
    )


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


def test_median_and_p90_on_hand_computed_examples() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    # p90 of 1..4: rank 0.9 * 3 = 2.7 -> 3 + 0.7 * (4 - 3)
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.9) == pytest.approx(3.7)
    # 1..10: rank 8.1 -> 9 + 0.1 * 1
    assert percentile([float(v) for v in range(10, 0, -1)], 0.9) == pytest.approx(9.1)
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([], 0.5) is None and median([]) is None


def test_percentile_agrees_with_excel_percentile_inc() -> None:
    values = [0.5, 7.0, 2.25, 1.0, 30.0, 4.0, 4.0]
    assert percentile(values, 0.9) == pytest.approx(
        statistics.quantiles(values, n=10, method="inclusive")[8]
    )
    assert percentile(values, 0.5) == pytest.approx(statistics.median(values))


def test_working_time_over_a_weekend() -> None:
    # Friday 27 Nov 17:30 -> Monday 30 Nov 08:45: 0.5 h Friday + 0.75 h Monday
    assert working_hours(calendar(), at(27, 17, 30), at(30, 8, 45)) == pytest.approx(1.25)


def test_working_time_over_a_holiday_and_a_closure_day() -> None:
    # 24 Dec 2026 is a Thursday (closure), 25 and 26 are public holidays (Fri, Sat).
    cal = calendar(closures=["2026-12-24"])
    start, end = at(23, 17, 0, month=12), at(28, 9, 0, month=12)
    # Wed 17-18 (1 h) + Mon 8-9 (1 h); Thu closed, Fri holiday, weekend
    assert working_hours(cal, start, end) == pytest.approx(2.0)
    # without the closure day, Thursday counts 10 h more
    assert working_hours(calendar(), start, end) == pytest.approx(12.0)


def test_response_stats_per_person_in_working_time_and_share_before_stage1() -> None:
    cal = calendar()
    now = at(30, 12)
    rows = [
        # Anna: 1 h, 3 h (Fri 17 -> Mon 10 = 1 h + 2 h), 5 h; one unanswered, overdue
        ResponseRow("Anna", at(23, 9), at(23, 10), at(23, 13)),
        ResponseRow("Anna", at(27, 17), at(30, 10), at(30, 11)),
        ResponseRow("Anna", at(24, 8), at(24, 13), at(24, 12)),  # late: after stage 1
        ResponseRow("Anna", at(25, 8), None, at(25, 12)),  # unanswered, stage 1 passed
        # Bert: one unanswered whose stage 1 is still ahead: not decided yet
        ResponseRow("Bert", at(30, 11), None, at(30, 15)),
        ResponseRow("Bert", at(26, 8), at(26, 8, 30), at(26, 12)),
    ]
    anna, bert = response_stats(rows, cal, now)
    assert (anna.person, anna.leads, anna.answered) == ("Anna", 4, 3)
    assert anna.median_hours == pytest.approx(3.0)
    assert anna.p90_hours == pytest.approx(3.0 + 0.8 * 2.0)  # rank 1.8 of [1, 3, 5]
    assert (anna.on_time, anna.due) == (2, 4)
    assert anna.on_time_share == pytest.approx(0.5)
    assert (bert.leads, bert.answered, bert.on_time, bert.due) == (2, 1, 1, 1)
    assert bert.median_hours == pytest.approx(0.5) and bert.on_time_share == 1.0


def test_weeks_and_counts_per_week() -> None:
    assert week_start(date(2026, 11, 29)) == date(2026, 11, 23)  # Sunday -> Monday
    assert weeks_between(date(2026, 11, 18), date(2026, 11, 30)) == [
        date(2026, 11, 16),
        date(2026, 11, 23),
        date(2026, 11, 30),
    ]
    weeks = weeks_between(date(2026, 11, 16), date(2026, 11, 29))
    rows = [
        (date(2026, 11, 16), "mobile.de"),
        (date(2026, 11, 22), "mobile.de"),
        (date(2026, 11, 23), "autoscout24"),
        (date(2026, 11, 29), "mobile.de"),
        (date(2026, 12, 1), "mobile.de"),  # outside: ignored
    ]
    assert per_week(rows, weeks) == {"mobile.de": [2, 1], "autoscout24": [0, 1]}


def test_default_range_is_twelve_weeks_ending_today() -> None:
    start, end = default_range(date(2026, 11, 30))
    assert end == date(2026, 11, 30)
    assert start == date(2026, 9, 14) and start.weekday() == 0  # 30 Nov - 11 weeks
    assert len(weeks_between(start, end)) == 12


def test_outcomes_by_source_use_the_reason_outcome() -> None:
    outcome = {"sold": "won", "no_interest": "lost", "duplicate": "other"}
    rows = [
        ("mobile.de", "sold"),
        ("mobile.de", "no_interest"),
        ("mobile.de", "sold"),
        ("mobile.de", None),
        ("website", "duplicate"),
        ("website", "typed by hand"),
    ]
    result = outcomes_by_source(rows, lambda code: outcome.get(code, "other"))
    assert result["mobile.de"] == Outcomes(won=2, lost=1, other=0, open=1)
    assert result["mobile.de"].win_rate == pytest.approx(2 / 3)
    assert result["website"] == Outcomes(other=2)
    assert result["website"].win_rate is None
    assert list(result) == ["mobile.de", "website"]  # most closed first


def test_top_keys_sums_the_small_series() -> None:
    series = {"a": [5, 5], "b": [3, 0], "c": [1, 1], "d": [0, 2]}
    assert top_keys(series, 3, "rest") == {"a": [5, 5], "b": [3, 0], "rest": [1, 3]}
    assert top_keys(series, 4, "rest") == series


def test_nice_axis_maximum() -> None:
    assert [nice_max(v) for v in (0, 0.4, 3, 7, 12, 26, 140)] == [1, 1, 5, 10, 20, 50, 200]


def test_line_chart_is_accessible_svg_with_distinct_dashes_and_markers() -> None:
    markup = line_chart(
        "c1",
        "Leads <per> week",
        "Desc & more",
        ["W1", "W2", "W3"],
        [Series("mobile.de", [1, 4, 2]), Series("Händler & Co", [0, 2, 3])],
        y_label="Leads",
    )
    root = ET.fromstring(str(markup))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Leads <per> week"
    assert root.find(f"{SVG}desc").text == "Desc & more"
    lines = root.findall(f".//{SVG}polyline")
    assert len(lines) == 2
    assert lines[0].get("stroke") != lines[1].get("stroke")
    assert lines[0].get("stroke-dasharray") != lines[1].get("stroke-dasharray")
    assert len(lines[0].get("points").split()) == 3
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Händler & Co" in texts and "W1" in texts and "Leads" in texts
    assert "style=" not in str(markup)  # the CSP forbids inline styles


def test_bar_chart_labels_every_bar_with_its_value_and_uses_patterns() -> None:
    markup = bar_chart(
        "c2",
        "Won and lost",
        "Bars",
        ["mobile.de", "website"],
        [Series("Won", [3, 0]), Series("Lost", [1, None])],
    )
    root = ET.fromstring(str(markup))
    patterns = root.findall(f".//{SVG}pattern")
    assert len(patterns) == 2
    bars = [r for r in root.iter(f"{SVG}rect") if (r.get("fill") or "").startswith("url(#c2-p")]
    assert len(bars) == 3 + 2  # three values (None has no bar) plus two legend swatches
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts.count("3") == 1 and "1" in texts and "–" in texts
    widths = {
        b.find(f"{SVG}title").text: float(b.get("width"))
        for b in bars
        if b.find(f"{SVG}title") is not None
    }
    assert widths["mobile.de · Won: 3"] == pytest.approx(3 * widths["mobile.de · Lost: 1"])


def test_utc_input_is_fine() -> None:
    start = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # 17:30 Berlin
    assert working_hours(calendar(), start, start + timedelta(hours=1)) == pytest.approx(0.5)


def test_work_clock_gives_the_calendars_answers() -> None:
    """Across a DST change (25 Oct), holidays (25/26 Dec), a closure day and the stretch's ends."""
    import random

    from mailgate.webui.reports.worktime import WorkClock

    hours = {**WEEKDAYS_8_TO_18, "mon": ["08:00-12:00", "13:00-18:00"], "sat": ["09:00-13:00"]}
    plain = WorkingCalendar.from_settings(
        hours, timezone="Europe/Berlin", country="DE", subdivision="BY", closures=["2026-12-24"]
    )
    clock = WorkClock(plain, date(2026, 10, 1), date(2026, 12, 31))
    rng = random.Random(3)
    base = datetime(2026, 9, 28, tzinfo=UTC)
    for _ in range(400):
        start = base + timedelta(minutes=rng.randint(0, 100 * 24 * 60))
        if rng.random() < 0.2:  # exactly on an opening or closing time
            start = rng.choice(clock.starts + clock.ends)
        end = start + timedelta(minutes=rng.randint(0, 6 * 24 * 60))
        duration = timedelta(minutes=rng.choice((1, 30, 240, 600, 2400)))
        assert clock.working_time_between(start, end) == plain.working_time_between(start, end)
        assert clock.working_time_between(end, start) == plain.working_time_between(end, start)
        assert clock.add_working_time(start, duration) == plain.add_working_time(start, duration)
    assert clock.add_working_time(base, timedelta(0)) == plain.add_working_time(base, timedelta(0))


def test_ladder_counts_every_step_a_lead_reached() -> None:
    from mailgate.webui.reports.stats import column_totals, ladder_by_source

    rows = [
        ("mobile.de", (True, True, True, False, False)),
        ("mobile.de", (True, False, True, True, True)),  # no test drive, straight to an offer
        ("website", (False, False, False, False, False)),
        ("mobile.de", (False, False, False, False, False)),
    ]
    table = ladder_by_source(rows)
    assert list(table) == ["mobile.de", "website"]  # most leads first
    assert table["mobile.de"] == [3, 2, 1, 2, 1, 1]
    assert table["website"] == [1, 0, 0, 0, 0, 0]
    assert column_totals(table) == [4, 2, 1, 2, 1, 1] and column_totals({}) == []
