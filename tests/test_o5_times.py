"""Row O5: reminder and escalation times over business hours, weekends, holidays, time zones
and DST switch days, as one table of 50 hand-computed cases.

The ladder takes its clock as an argument (no freezegun needed): ``timeline`` gives the due
instants and the times the mails may leave (``next_open``), which is what the scheduler does
with them (it sends nothing while the dealer is closed; tests/test_escalation.py runs that end
to end).  Defaults: stage 1 after 4 h of working time, the reminder 1 h of continuous time
before it (seed 002: "Alle anderen Zeiten gelten durchgehend"), stage 2 24 *elapsed* hours after
the stage-1 mail; a mail due exactly at closing time leaves at closing time (issue 20 changed
rows 04, 10, 23, 40 and 43, which asserted the old working-time reminder and a closing-time
mail held until the next morning).  Partly covered before by tests/test_ladder.py
and tests/test_calendar.py (single cases); this table is the O5 target.

Calendars: ``W`` Mon-Fri 08-18 Berlin with Bavarian holidays; ``C`` the same with the dealer
closed 24-31 Dec 2026; ``S`` Mon-Fri 08-12 + 13-18 and Sat 09-13 Berlin, Bavaria; ``N`` Mon-Fri
09-17 America/New_York with US federal holidays.  Times are local to the calendar unless they
end in ``Z`` (UTC input).  DST: Europe 29 Mar / 25 Oct 2026, US 8 Mar / 1 Nov 2026.
"""

# ruff: noqa: E501 - one case per line: the table is read (and checked by hand) row by row

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailgate.escalation.calendar import WorkingCalendar
from mailgate.escalation.ladder import EscalationTimes, timeline

WEEK = ("mon", "tue", "wed", "thu", "fri")
CALENDARS = {
    "W": WorkingCalendar.from_settings(
        {d: ["08:00-18:00"] for d in WEEK}, country="DE", subdivision="BY"
    ),
    "C": WorkingCalendar.from_settings(
        {d: ["08:00-18:00"] for d in WEEK},
        country="DE",
        subdivision="BY",
        closures=["2026-12-24..2026-12-31"],
    ),
    "S": WorkingCalendar.from_settings(
        {d: ["08:00-12:00", "13:00-18:00"] for d in WEEK} | {"sat": ["09:00-13:00"]},
        country="DE",
        subdivision="BY",
    ),
    "N": WorkingCalendar.from_settings(
        {d: ["09:00-17:00"] for d in WEEK}, timezone="America/New_York", country="US"
    ),
}
TIMES = EscalationTimes(
    stage1=timedelta(hours=4),
    reminder_before=timedelta(hours=1),
    stage2=timedelta(hours=24),
    stage2_resubmission=timedelta(hours=8),
)

# id, calendar, received, reminder due, reminder sent ("" = when due), stage 1, stage 2 sent
CASES = [
    ("01 weekday morning", "W", "2026-11-23 10:00", "2026-11-23 13:00", "", "2026-11-23 14:00", "2026-11-24 14:00"),
    ("02 before opening", "W", "2026-11-23 07:00", "2026-11-23 11:00", "", "2026-11-23 12:00", "2026-11-24 12:00"),
    ("03 reminder at next opening", "W", "2026-11-23 15:00", "2026-11-24 08:00", "", "2026-11-24 09:00", "2026-11-25 09:00"),
    ("04 stage 1 at closing, stage 2 at closing", "W", "2026-11-23 14:00", "2026-11-23 17:00", "", "2026-11-23 18:00", "2026-11-24 18:00"),
    ("05 Friday afternoon", "W", "2026-11-27 16:00", "2026-11-30 09:00", "", "2026-11-30 10:00", "2026-12-01 10:00"),
    ("06 stage 2 due Saturday, sent Monday", "W", "2026-11-27 13:00", "2026-11-27 16:00", "", "2026-11-27 17:00", "2026-11-30 08:00"),
    ("07 Saturday", "W", "2026-11-28 10:00", "2026-11-30 11:00", "", "2026-11-30 12:00", "2026-12-01 12:00"),
    ("08 Sunday night", "W", "2026-11-29 23:30", "2026-11-30 11:00", "", "2026-11-30 12:00", "2026-12-01 12:00"),
    ("09 Friday after 17:30", "W", "2026-11-27 17:30", "2026-11-30 10:30", "", "2026-11-30 11:30", "2026-12-01 11:30"),
    ("10 reminder in the night, sent at opening", "W", "2026-11-27 14:30", "2026-11-30 07:30", "2026-11-30 08:00", "2026-11-30 08:30", "2026-12-01 08:30"),
    ("11 stage 2 Saturday 18:00", "W", "2026-11-27 14:00", "2026-11-27 17:00", "", "2026-11-27 18:00", "2026-11-30 08:00"),
    ("12 DST autumn, stage 2 Saturday", "W", "2026-10-23 14:00", "2026-10-23 17:00", "", "2026-10-23 18:00", "2026-10-26 08:00"),
    ("13 DST autumn, received Saturday", "W", "2026-10-24 12:00", "2026-10-26 11:00", "", "2026-10-26 12:00", "2026-10-27 12:00"),
    ("14 DST autumn, Friday 17:00", "W", "2026-10-23 17:00", "2026-10-26 10:00", "", "2026-10-26 11:00", "2026-10-27 11:00"),
    ("15 DST autumn, 24 h end an hour earlier", "S", "2026-10-24 09:00", "2026-10-24 12:00", "", "2026-10-24 13:00", "2026-10-26 08:00"),
    ("16 DST spring, Saturday shop", "S", "2026-03-28 09:00", "2026-03-28 12:00", "", "2026-03-28 13:00", "2026-03-30 08:00"),
    ("17 DST spring, Friday afternoon", "W", "2026-03-27 16:00", "2026-03-30 09:00", "", "2026-03-30 10:00", "2026-03-31 10:00"),
    ("18 DST spring, Monday early", "W", "2026-03-30 07:00", "2026-03-30 11:00", "", "2026-03-30 12:00", "2026-03-31 12:00"),
    ("19 US DST Sunday", "N", "2026-03-08 12:00", "2026-03-09 12:00", "", "2026-03-09 13:00", "2026-03-10 13:00"),
    ("20 UTC input, winter", "W", "2026-11-23T06:30Z", "2026-11-23 11:00", "", "2026-11-23 12:00", "2026-11-24 12:00"),
    ("21 UTC input, just after spring switch", "W", "2026-03-29T01:30Z", "2026-03-30 11:00", "", "2026-03-30 12:00", "2026-03-31 12:00"),
    ("22 UTC input, repeated autumn hour", "W", "2026-10-25T00:30Z", "2026-10-26 11:00", "", "2026-10-26 12:00", "2026-10-27 12:00"),
    ("23 UTC input, summer", "W", "2026-07-15T12:00Z", "2026-07-15 17:00", "", "2026-07-15 18:00", "2026-07-16 18:00"),
    ("24 New Year's Day", "W", "2026-12-31 16:00", "2027-01-04 09:00", "", "2027-01-04 10:00", "2027-01-05 10:00"),
    ("25 Epiphany (Bavaria)", "W", "2027-01-05 16:00", "2027-01-07 09:00", "", "2027-01-07 10:00", "2027-01-08 10:00"),
    ("26 Easter: Good Friday to Easter Monday", "W", "2026-04-02 15:00", "2026-04-07 08:00", "", "2026-04-07 09:00", "2026-04-08 09:00"),
    ("27 Ascension Day", "W", "2026-05-13 17:00", "2026-05-15 10:00", "", "2026-05-15 11:00", "2026-05-18 08:00"),
    ("28 Whit Monday", "W", "2026-05-22 15:00", "2026-05-26 08:00", "", "2026-05-26 09:00", "2026-05-27 09:00"),
    ("29 Corpus Christi (Bavaria)", "W", "2026-06-03 16:00", "2026-06-05 09:00", "", "2026-06-05 10:00", "2026-06-08 08:00"),
    ("30 Labour Day", "W", "2026-04-30 17:00", "2026-05-04 10:00", "", "2026-05-04 11:00", "2026-05-05 11:00"),
    ("31 All Saints on a Sunday", "W", "2026-10-30 16:00", "2026-11-02 09:00", "", "2026-11-02 10:00", "2026-11-03 10:00"),
    ("32 All Saints on a Monday", "W", "2027-10-29 16:00", "2027-11-02 09:00", "", "2027-11-02 10:00", "2027-11-03 10:00"),
    ("33 Christmas Eve is a working day", "W", "2026-12-23 16:00", "2026-12-24 09:00", "", "2026-12-24 10:00", "2026-12-28 08:00"),
    ("34 dealer closed over Christmas", "C", "2026-12-23 16:00", "2027-01-04 09:00", "", "2027-01-04 10:00", "2027-01-05 10:00"),
    ("35 received during the closure", "C", "2026-12-28 10:00", "2027-01-04 11:00", "", "2027-01-04 12:00", "2027-01-05 12:00"),
    ("36 Christmas holidays and weekend", "W", "2026-12-24 17:00", "2026-12-28 10:00", "", "2026-12-28 11:00", "2026-12-29 11:00"),
    ("37 lunch break skipped", "S", "2026-11-23 10:00", "2026-11-23 14:00", "", "2026-11-23 15:00", "2026-11-24 15:00"),
    ("38 half an hour before lunch", "S", "2026-11-23 11:30", "2026-11-23 15:30", "", "2026-11-23 16:30", "2026-11-24 16:30"),
    ("39 reminder at the end of lunch", "S", "2026-11-23 09:00", "2026-11-23 13:00", "", "2026-11-23 14:00", "2026-11-24 14:00"),
    ("40 reminder in the lunch break", "S", "2026-11-23 08:30", "2026-11-23 12:30", "2026-11-23 13:00", "2026-11-23 13:30", "2026-11-24 13:30"),
    ("41 Saturday morning counts", "S", "2026-11-27 16:00", "2026-11-28 10:00", "", "2026-11-28 11:00", "2026-11-30 08:00"),
    ("42 Saturday to Monday", "S", "2026-11-28 12:00", "2026-11-30 10:00", "", "2026-11-30 11:00", "2026-12-01 11:00"),
    ("43 stage 2 at the lunch break", "S", "2026-11-28 13:00", "2026-11-30 11:00", "", "2026-11-30 12:00", "2026-12-01 12:00"),
    ("44 received during lunch", "S", "2026-11-27 12:30", "2026-11-27 16:00", "", "2026-11-27 17:00", "2026-11-30 08:00"),
    ("45 stage 1 at Friday closing", "S", "2026-11-27 14:00", "2026-11-27 17:00", "", "2026-11-27 18:00", "2026-11-30 08:00"),
    ("46 Thanksgiving", "N", "2026-11-25 15:00", "2026-11-27 10:00", "", "2026-11-27 11:00", "2026-11-30 09:00"),
    ("47 US spring DST weekend", "N", "2026-03-06 15:00", "2026-03-09 10:00", "", "2026-03-09 11:00", "2026-03-10 11:00"),
    ("48 US autumn DST weekend", "N", "2026-10-30 16:00", "2026-11-02 11:00", "", "2026-11-02 12:00", "2026-11-03 12:00"),
    ("49 UTC input, New York", "N", "2026-11-23T13:00Z", "2026-11-23 12:00", "", "2026-11-23 13:00", "2026-11-24 13:00"),
    ("50 Independence Day observed Friday", "N", "2026-07-02 16:00", "2026-07-06 11:00", "", "2026-07-06 12:00", "2026-07-07 12:00"),
]  # fmt: skip


def _at(text: str, zone: ZoneInfo) -> datetime:
    if text.endswith("Z"):
        return datetime.fromisoformat(text)
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_o5_table_has_fifty_distinct_cases() -> None:
    """O5: the table is the promised 50 cases, no id or input twice."""
    assert len(CASES) == 50
    assert len({case[0] for case in CASES}) == 50
    assert len({(case[1], case[2]) for case in CASES}) == 50


@pytest.mark.parametrize(
    ("calendar", "received", "reminder", "reminder_sent", "stage1", "stage2_sent"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_o5_reminder_times_match_the_table(
    calendar: str, received: str, reminder: str, reminder_sent: str, stage1: str, stage2_sent: str
) -> None:
    """O5: due and send times of reminder, stage 1 and stage 2 for one row of the table
    (compared as instants and as local wall-clock times, so a wrong UTC offset fails too)."""
    cal = CALENDARS[calendar]
    zone = cal.zone
    line = timeline(cal, TIMES, _at(received, zone))
    expected = {
        "reminder_at": _at(reminder, zone),
        "reminder_send_at": _at(reminder_sent or reminder, zone),
        "stage1_at": _at(stage1, zone),
        "stage2_send_at": _at(stage2_sent, zone),
    }
    for name, want in expected.items():
        got = getattr(line, name)
        assert got == want, f"{name}: {got.isoformat()} != {want.isoformat()}"
        assert got.replace(tzinfo=None) == want.replace(tzinfo=None), f"{name} local time"
        assert got.utcoffset() == want.utcoffset(), f"{name} offset"
    # stage 2 is 24 real hours after stage 1, whatever the clocks did in between (compared
    # in UTC: Python subtracts two datetimes of one zone by their wall-clock times)
    assert line.stage2_at.astimezone(UTC) - line.stage1_at.astimezone(UTC) == TIMES.stage2
