"""The escalation ladder: the four times, overrides per source/kind, the send window."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from mailgate.dealer_settings import parse_duration
from mailgate.escalation.calendar import WorkingCalendar
from mailgate.escalation.ladder import EscalationTimes, due_state, timeline, times_for

from .procs import make_install

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_8_18 = {d: ["08:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
CAL = WorkingCalendar.from_settings(WEEKDAYS_8_18, country="DE", subdivision="BY")
DEFAULTS = EscalationTimes(
    stage1=timedelta(hours=4),
    reminder_before=timedelta(hours=1),
    stage2=timedelta(hours=24),
    stage2_resubmission=timedelta(hours=8),
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def test_module_example_friday_afternoon() -> None:
    line = timeline(CAL, DEFAULTS, at("2026-11-27 16:00"))
    assert line.stage1_at == at("2026-11-30 10:00")
    assert line.reminder_at == at("2026-11-30 09:00")
    assert line.stage2_at == at("2026-12-01 10:00")
    assert line.stage2_send_at == line.stage2_at  # open then: sent at once


def test_stage2_counts_nights_and_waits_for_opening_to_be_sent() -> None:
    """Stage 1 Friday 17:00, stage 2 = 24 h -> due Saturday 17:00, sent Monday 08:00."""
    line = timeline(CAL, DEFAULTS, at("2026-11-27 13:00"))
    assert line.stage1_at == at("2026-11-27 17:00")
    assert line.stage2_at == at("2026-11-28 17:00")
    assert line.stage2_send_at == at("2026-11-30 08:00")


def test_holiday_weekend_before_christmas() -> None:
    """Received Wednesday 23 Dec 2026 at 20:00: 24 Dec a closure, 25/26 Dec holidays."""
    cal = WorkingCalendar.from_settings(
        WEEKDAYS_8_18, country="DE", subdivision="BY", closures=["2026-12-24"]
    )
    line = timeline(cal, DEFAULTS, at("2026-12-23 20:00"))
    assert line.stage1_at == at("2026-12-28 12:00")  # 24th closed, 25th/26th holidays, weekend
    assert line.reminder_at == at("2026-12-28 11:00")
    assert line.stage2_at == at("2026-12-29 12:00")


def test_stage2_is_elapsed_time_across_dst() -> None:
    """24 h after Saturday 24 Oct 2026 12:00 is Sunday 11:00 local (clocks went back)."""
    line = timeline(CAL, DEFAULTS, at("2026-10-23 14:00"))
    assert line.stage1_at == at("2026-10-23 18:00")
    assert line.stage2_at == at("2026-10-24 18:00")
    seven_day = EscalationTimes(
        stage1=timedelta(hours=4),
        reminder_before=timedelta(hours=1),
        stage2=timedelta(hours=48),
        stage2_resubmission=timedelta(hours=8),
    )
    line = timeline(CAL, seven_day, at("2026-10-23 14:00"))
    assert line.stage2_at == at("2026-10-25 17:00")  # 48 real hours, one of them repeated


def test_reminder_never_before_receipt() -> None:
    long_reminder = EscalationTimes(
        stage1=timedelta(hours=1),
        reminder_before=timedelta(hours=3),
        stage2=timedelta(hours=24),
        stage2_resubmission=timedelta(hours=8),
    )
    line = timeline(CAL, long_reminder, at("2026-11-23 10:00"))
    assert line.reminder_at == at("2026-11-23 10:00")


def test_rules_override_by_source_and_kind() -> None:
    rules = [
        {"match": {}, "stage1": "1m"},  # an empty match never applies
        {"match": {"source": ["oem:*"], "kind": ["test_drive"]}, "stage1": "2h"},
        {"match": {"source": ["oem:*"]}, "stage1": "8h", "stage2": "48h"},
    ]
    opel_drive = times_for(
        DEFAULTS, rules, source="oem:opel", kind="test_drive", parse_duration=parse_duration
    )
    assert opel_drive.stage1 == timedelta(hours=2) and opel_drive.stage2 == timedelta(hours=24)
    assert opel_drive.rule == "escalation.rules[1]"
    opel = times_for(
        DEFAULTS, rules, source="oem:opel", kind="inquiry", parse_duration=parse_duration
    )
    assert opel.stage1 == timedelta(hours=8) and opel.stage2 == timedelta(hours=48)
    web = times_for(
        DEFAULTS, rules, source="website", kind="inquiry", parse_duration=parse_duration
    )
    assert web == DEFAULTS and web.rule is None


def test_due_state() -> None:
    assert due_state(at("2026-11-23 08:59"), at("2026-11-23 09:00"), at("2026-11-23 10:00")) == "ok"
    assert (
        due_state(at("2026-11-23 09:00"), at("2026-11-23 09:00"), at("2026-11-23 10:00")) == "soon"
    )
    assert (
        due_state(at("2026-11-23 10:00"), at("2026-11-23 09:00"), at("2026-11-23 10:00"))
        == "overdue"
    )


TIMELINE_SETTINGS = """
[dealer]
addresses = ["leads@autohaus.example"]
[hours]
mon = ["08:00-12:00", "13:00-18:00"]
tue = ["08:00-12:00", "13:00-18:00"]
wed = ["08:00-12:00", "13:00-18:00"]
thu = ["08:00-12:00", "13:00-18:00"]
fri = ["08:00-12:00", "13:00-18:00"]
sat = ["09:00-13:00"]
[holidays]
country = "DE"
subdivision = "BY"
closures = ["2026-12-24..2026-12-31"]
[escalation]
stage1 = "4h"
reminder_before = "1h"
stage2 = "24h"
[[escalation.rules]]
match = { source = ["oem:*"] }
stage1 = "2h"
"""


def test_timeline_command(tmp_path: Path) -> None:
    install = make_install(tmp_path / "inst")
    (tmp_path / "hours.toml").write_text(TIMELINE_SETTINGS)
    hours = str(tmp_path / "hours.toml")  # no [[users]]: the example's users are not the point
    assert install.run("settings", "import", "--allow-no-users", hours).returncode == 0
    result = install.run("timeline", "--received", "2026-11-27T16:30")
    assert result.returncode == 0, result.stderr.decode()
    line = json.loads(result.stdout)
    assert line["stage1_at"] == "2026-11-28T11:30:00+01:00"
    assert line["reminder_at"] == "2026-11-28T10:30:00+01:00"
    assert line["stage2_at"] == "2026-11-29T11:30:00+01:00"
    stage2 = line["mails"][2]
    assert stage2 == {
        "purpose": "stage2",
        "to": "supervisor",
        "due_at": "2026-11-29T11:30:00+01:00",
        "send_at": "2026-11-30T08:00:00+01:00",
    }
    oem = json.loads(
        install.run(
            "timeline", "--received", "2026-11-27T16:30+01:00", "--source", "oem:opel"
        ).stdout
    )
    assert oem["stage1_at"] == "2026-11-28T09:30:00+01:00" and oem["rule"] == "escalation.rules[0]"
    bad = install.run("timeline", "--received", "Friday")
    assert bad.returncode == 2 and b"not an ISO datetime" in bad.stderr


def test_overlapping_hours_are_rejected_at_import(tmp_path: Path) -> None:
    install = make_install(tmp_path / "inst")
    (tmp_path / "bad.toml").write_text('[hours]\nmon = ["08:00-12:00", "11:00-14:00"]\n')
    result = install.run("settings", "import", str(tmp_path / "bad.toml"))
    assert result.returncode != 0 and b"overlap" in result.stderr
