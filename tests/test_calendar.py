"""The working-time clock: worked cases and properties (DST, holidays, split shifts)."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.escalation import calendar as calendar_module
from mailgate.escalation.calendar import CalendarError, WorkingCalendar

BERLIN = ZoneInfo("Europe/Berlin")
SPLIT = ["08:00-12:00", "13:00-18:00"]
HOURS = {day: SPLIT for day in ("mon", "tue", "wed", "thu", "fri")} | {"sat": ["09:00-13:00"]}
CAL = WorkingCalendar.from_settings(
    HOURS,
    timezone="Europe/Berlin",
    country="DE",
    subdivision="BY",
    categories=["public", "catholic"],
    closures=["2026-12-24..2026-12-31"],
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(calendar_module).failed == 0


@pytest.mark.parametrize(
    ("start", "duration", "expected", "why"),
    [
        ("2026-11-23 10:00", h(1), "2026-11-23 11:00", "inside the morning shift"),
        ("2026-11-23 11:00", h(2), "2026-11-23 14:00", "lunch break skipped"),
        ("2026-11-23 12:30", h(1), "2026-11-23 14:00", "received during the break"),
        ("2026-11-23 14:00", h(4), "2026-11-23 18:00", "deadline exactly at closing"),
        ("2026-11-23 07:00", h(0), "2026-11-23 08:00", "zero duration: next opening"),
        ("2026-11-27 16:30", h(4), "2026-11-28 11:30", "Friday afternoon into Saturday"),
        ("2026-11-28 12:00", h(2), "2026-11-30 09:00", "Saturday half-day, Sunday closed"),
        ("2026-11-27 20:00", h(1), "2026-11-28 10:00", "Friday evening: Saturday morning"),
        ("2026-12-23 17:00", h(2), "2027-01-02 10:00", "Christmas closure, New Year's Day"),
        ("2026-08-14 17:00", h(2), "2026-08-17 09:00", "Assumption (catholic) on Saturday"),
        ("2027-03-26 17:00", h(2), "2027-03-27 11:00", "Good Friday, Saturday before DST"),
        ("2026-10-23 17:30", h(8), "2026-10-26 11:30", "across the autumn DST change"),
        ("2026-11-23 08:00", timedelta(days=2), "2026-11-28 12:00", "48 h: 5 x 9 h + 3 h Sat"),
    ],
)
def test_add_working_time(start: str, duration: timedelta, expected: str, why: str) -> None:
    result = CAL.add_working_time(at(start), duration)
    assert result == at(expected), why
    assert result.tzinfo is not None and result.utcoffset() == at(expected).utcoffset()


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        ("2026-11-23 11:00", h(1), "2026-11-23 10:00"),
        ("2026-11-23 14:00", h(2), "2026-11-23 11:00"),
        ("2026-11-30 09:00", h(2), "2026-11-28 12:00"),
        ("2027-01-02 10:00", h(2), "2026-12-23 17:00"),
        ("2026-10-26 09:00", h(2), "2026-10-24 12:00"),
    ],
)
def test_subtract_working_time(start: str, duration: timedelta, expected: str) -> None:
    assert CAL.subtract_working_time(at(start), duration) == at(expected)


def test_working_time_between_and_is_open() -> None:
    assert CAL.working_time_between(at("2026-11-27 17:00"), at("2026-11-30 09:00")) == h(6)
    assert CAL.working_time_between(at("2026-11-30 09:00"), at("2026-11-27 17:00")) == -h(6)
    assert CAL.working_time_between(at("2026-12-24 00:00"), at("2026-12-31 23:59")) == h(0)
    assert CAL.is_open(at("2026-11-23 08:00")) and not CAL.is_open(at("2026-11-23 12:00"))
    assert not CAL.is_open(at("2026-12-25 10:00"))  # Christmas Day, and a closure
    assert not CAL.is_open(at("2026-11-29 10:00"))  # Sunday
    assert CAL.closed_reason(at("2026-08-15 10:00").date()) == "Assumption Day"
    assert CAL.next_open(at("2026-11-28 13:00")) == at("2026-11-30 08:00")


def test_dst_spring_forward_interval_is_an_hour_shorter_in_elapsed_time() -> None:
    """A Sunday shop open 00:00-06:00 on the spring-forward night works 5 real hours."""
    cal = WorkingCalendar.from_settings({"sun": ["00:00-06:00"]}, country=None)
    sunday = at("2027-03-28 00:00")
    assert cal.working_time_between(sunday, at("2027-03-28 06:00")) == h(5)
    assert cal.add_working_time(sunday, h(5)) == at("2027-03-28 06:00")


def test_other_timezones_are_converted() -> None:
    utc_moment = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert CAL.add_working_time(utc_moment, h(1)) == at("2026-11-23 11:00")


@pytest.mark.parametrize(
    ("hours", "closures", "message"),
    [
        ({}, [], "no opening hours"),
        ({"mon": ["18:00-08:00"]}, [], "ends before"),
        ({"mon": ["8-12"]}, [], "not an interval"),
        ({"mon": ["08:00-12:00", "11:00-13:00"]}, [], "overlap"),
        ({"mon": ["08:00-12:00"]}, ["2026-13-01"], "closure"),
    ],
)
def test_bad_settings_are_rejected(hours: dict, closures: list[str], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        WorkingCalendar.from_settings(hours, closures=closures)


def test_unknown_holiday_regions_are_refused() -> None:
    """The holidays package raises NotImplementedError/KeyError for these; we say why."""
    with pytest.raises(CalendarError, match="unknown holiday region XX"):
        WorkingCalendar.from_settings({"mon": ["08:00-12:00"]}, country="XX")
    with pytest.raises(CalendarError, match="unknown holiday region DE-ZZ"):
        WorkingCalendar.from_settings({"mon": ["08:00-12:00"]}, country="DE", subdivision="ZZ")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.add_working_time(datetime(2026, 11, 23, 10), h(1))


def test_an_always_closed_calendar_fails_clearly() -> None:
    cal = WorkingCalendar.from_settings(
        {"mon": ["08:00-12:00"]}, country=None, closures=["2026-01-01..2026-12-31"]
    )
    assert cal.next_open(at("2026-06-01 10:00")) == at("2027-01-04 08:00")


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(BERLIN)
)
durations = st.integers(min_value=0, max_value=60 * 24 * 30).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(start=moments, duration=durations)
def test_between_inverts_add(start: datetime, duration: timedelta) -> None:
    end = CAL.add_working_time(start, duration)
    assert CAL.working_time_between(start, end) == duration
    assert end >= start


@settings(max_examples=300, deadline=None)
@given(start=moments, duration=durations.filter(lambda d: d > timedelta(0)))
def test_results_lie_inside_opening_hours(start: datetime, duration: timedelta) -> None:
    end = CAL.add_working_time(start, duration)
    day = end.astimezone(BERLIN).date()
    assert any(opens < end <= closes for opens, closes in CAL.day_intervals(day))
    back = CAL.subtract_working_time(end, duration)
    assert CAL.working_time_between(back, end) == duration
    assert CAL.is_open(back) or back == CAL.next_open(back)


@settings(max_examples=200, deadline=None)
@given(start=moments)
def test_next_open_is_open_and_nothing_earlier_is(start: datetime) -> None:
    opened = CAL.next_open(start)
    assert CAL.is_open(opened) and opened >= start
    assert CAL.working_time_between(start, opened) == timedelta(0)
