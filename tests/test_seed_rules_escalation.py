"""Issue 20, contradictions 1-4: the escalation rules as the seed manuals state them.

Each test quotes the seed rule it holds the product to.  The arithmetic is
checked with hypothesis on the pure ladder (a simulated scheduler passing every
five minutes), the I/O end to end with a pinned clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings, load_dealer_config
from mailgate.distribution import notices
from mailgate.escalation.actions import set_qualification
from mailgate.escalation.calendar import WorkingCalendar
from mailgate.escalation.ladder import (
    CLOSING_GRACE,
    EscalationTimes,
    advance,
    initial_due_times,
    staff_window,
    timeline,
)
from mailgate.escalation.scheduler import tick
from mailgate.models import Lead, OutboxMail, ProtocolEntry, User

from .test_escalation import ESCALATING_DEALER, at, ingest_at, mails

BERLIN = ZoneInfo("Europe/Berlin")
SATURDAY_DEALER = ESCALATING_DEALER.replace(
    'fri = ["08:00-18:00"]\n', 'fri = ["08:00-18:00"]\nsat = ["09:00-13:00"]\n'
)
CALENDAR = WorkingCalendar.from_settings(
    {d: ["08:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    | {"sat": ["09:00-13:00"]},
    country="DE",
    subdivision="BY",
)
STEP = timedelta(minutes=5)
ZERO = timedelta(0)


def _setup(factory: sessionmaker[Session], toml: str = ESCALATING_DEALER) -> None:
    with db.session_scope(factory) as session:
        import_settings(session, toml)


# --- 1. qualification tightens, never loosens (seed 004) -------------------------------


def test_hot_sets_a_processing_target_and_never_moves_the_first_response_later(
    dealer: sessionmaker[Session],
) -> None:
    """Seed 004: "Heiß (sehr wichtiger Lead → rasche Leadbearbeitung innerhalb von
    2 Arbeitstagen)".  Setting "hot" on Monday 09:00 gives a target Wednesday 18:00 of its
    own; stage 1 stays Monday 12:00, the supervisor's time stays, and the missed target is
    mailed to the assignee (once), at the target's closing time."""
    _setup(dealer)
    lead = ingest_at(dealer, at("2026-11-30 08:00"))  # stage 1 Monday 12:00
    with dealer() as session:
        before = session.get(Lead, lead)
        overdue, stage2 = before.overdue_at, before.stage2_at
    assert overdue == at("2026-11-30 12:00")
    with db.session_scope(dealer) as session:
        cfg = load_dealer_config(session)
        set_qualification(
            session, cfg, lead, "anna@autohaus.example", at("2026-11-30 09:00"), "hot"
        )
    with dealer() as session:
        row = session.get(Lead, lead)
        assert (row.overdue_at, row.stage2_at) == (overdue, stage2)
        assert row.target_at == at("2026-12-02 18:00")
    tick(dealer, now=at("2026-11-30 12:00"))
    assert [p for p, _, _ in mails(dealer, lead)] == ["stage1"]  # on time, not Thursday
    tick(dealer, now=at("2026-12-02 17:59"))
    assert "target_missed" not in [p for p, _, _ in mails(dealer, lead)]
    tick(dealer, now=at("2026-12-02 18:00") + timedelta(seconds=20))  # closing-time pass
    tick(dealer, now=at("2026-12-03 09:00"))
    missed = [(p, r) for p, r, _ in mails(dealer, lead) if p == "target_missed"]
    assert missed == [("target_missed", ["anna@autohaus.example"])]


@pytest.mark.parametrize("value", ["hot", "warm", "cold"])
@pytest.mark.parametrize("when", ["2026-11-27 16:30", "2026-11-30 09:00", "2026-11-30 11:55"])
def test_no_qualification_makes_the_stage1_deadline_later(
    dealer: sessionmaker[Session], value: str, when: str
) -> None:
    """Seed 004's targets (2 / 5 / 10 Arbeitstage) are a processing target of their own:
    whatever the qualification and whenever it is set, stage 1 and stage 2 stay put."""
    _setup(dealer)
    lead = ingest_at(dealer, at("2026-11-27 16:00"))
    with dealer() as session:
        row = session.get(Lead, lead)
        planned = (row.soon_at, row.overdue_at, row.stage2_at, row.next_due_at)
    with db.session_scope(dealer) as session:
        cfg = load_dealer_config(session)
        set_qualification(session, cfg, lead, "anna@autohaus.example", at(when), value)
    with dealer() as session:
        row = session.get(Lead, lead)
        assert (row.soon_at, row.overdue_at, row.stage2_at, row.next_due_at) == planned
        assert row.target_at is not None and row.target_at > at(when)


# --- 2. the reminder counts in continuous time (seed 002) -------------------------------


def test_reminder_is_continuous_time_before_stage1() -> None:
    """Seed 002: "Lediglich die Eskalationsstufe 1 nimmt Bezug auf die eingetragenen
    Öffnungszeiten. Alle anderen Zeiten gelten durchgehend".  Stage 1 Monday 08:30, reminder
    1 h before: due Monday 07:30 (not Friday 17:30 of working time), sent at 08:00."""
    cal = WorkingCalendar.from_settings(
        {d: ["08:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, country="DE"
    )
    times = EscalationTimes(timedelta(hours=4), timedelta(hours=1), timedelta(hours=24), ZERO)
    line = timeline(cal, times, at("2026-11-27 14:30"))
    assert line.stage1_at == at("2026-11-30 08:30")
    assert line.reminder_at == at("2026-11-30 07:30")
    assert line.reminder_send_at == at("2026-11-30 08:00")


def test_a_reminder_that_could_only_leave_at_stage1_is_skipped() -> None:
    """Seed 002 (reminder "vor Ablauf der Eskalationsstufe 1"): a reminder whose send time
    is not before stage 1 is not sent at all, and the timeline does not list it."""
    times = EscalationTimes(timedelta(minutes=30), timedelta(hours=3), timedelta(hours=24), ZERO)
    line = timeline(CALENDAR, times, at("2026-11-30 12:30"))  # in the lunch break 12-13
    assert line.stage1_at == at("2026-11-30 13:30")
    assert line.reminder_at == at("2026-11-30 12:30")  # never before receipt
    assert line.reminder_send_at == at("2026-11-30 13:00")  # sent at opening, before stage 1
    assert not line.reminder_skipped
    times = EscalationTimes(ZERO, timedelta(hours=1), timedelta(hours=24), ZERO)
    line = timeline(CALENDAR, times, at("2026-11-29 10:00"))  # Sunday; stage 1 at opening
    assert line.reminder_skipped
    assert [m["purpose"] for m in line.mails()] == ["stage1", "stage2"]


# --- 3. stage 2 counts from the stage-1 mail (seed 002) ---------------------------------


def test_stage1_due_at_saturday_closing_leaves_at_closing_not_with_the_supervisor_mail(
    dealer: sessionmaker[Session],
) -> None:
    """Seed 002: "Die Eskalationsstufe 2 definiert den Zeitraum zwischen der Eskalation einer
    Anfrage beim Verkäufer und der Information / Eskalation an einen Vorgesetzten."  Stage 1
    due Saturday 13:00 (closing): the overdue mail leaves at 13:00, the supervisor hears
    Monday 08:00 (24 h later is Sunday), never both in one minute."""
    _setup(dealer, SATURDAY_DEALER)
    lead = ingest_at(dealer, at("2026-11-28 09:00"))  # 4 h of Saturday: stage 1 at 13:00
    with dealer() as session:
        assert session.get(Lead, lead).overdue_at == at("2026-11-28 13:00")
    tick(dealer, now=at("2026-11-28 13:00") + timedelta(seconds=30))
    tick(dealer, now=at("2026-11-30 08:00"))
    sent = [(p, s) for p, _, s in mails(dealer, lead) if p != "reminder"]
    assert sent == [
        ("stage1", at("2026-11-28 13:00") + timedelta(seconds=30)),
        ("stage2", at("2026-11-30 08:00")),
    ]


def test_a_late_stage1_mail_gives_the_salesperson_the_whole_stage2_period(
    dealer: sessionmaker[Session],
) -> None:
    """Seed 002 (stage 2 counts from the escalation to the salesperson): when the stage-1
    mail could only leave Monday 08:00 (the scheduler missed Saturday's closing), the
    supervisor hears 24 h after that mail, and the mail names that time."""
    _setup(dealer, SATURDAY_DEALER)
    lead = ingest_at(dealer, at("2026-11-28 09:00"))
    assert tick(dealer, now=at("2026-11-28 14:00")).closed  # too late after closing
    tick(dealer, now=at("2026-11-30 08:00"))
    assert [p for p, _, _ in mails(dealer, lead)] == ["stage1"]
    with dealer() as session:
        assert session.get(Lead, lead).stage2_at == at("2026-12-01 08:00")
        context = session.scalars(
            select(OutboxMail.render).where(OutboxMail.purpose == "stage1")
        ).one()["context"]
    assert context["stage2_at"] == "01.12.2026 08:00"
    tick(dealer, now=at("2026-12-01 07:59"))
    assert [p for p, _, _ in mails(dealer, lead)] == ["stage1"]
    tick(dealer, now=at("2026-12-01 08:00"))
    assert [p for p, _, _ in mails(dealer, lead)] == ["stage1", "stage2"]


def test_timeline_cli_shows_stage2_from_the_stage1_mail(
    dealer: sessionmaker[Session], capsys: pytest.CaptureFixture[str], db_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """``mailgate timeline`` shows the same rule: stage 1 Saturday 13:00 (closing) is mailed
    at 13:00, stage 2 is 24 h after that mail and leaves at Monday's opening."""
    from mailgate.cli import main

    _setup(dealer, SATURDAY_DEALER)
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    code = main(["timeline", "--config", str(config), "--received", "2026-11-28T09:00:00+01:00"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    by_purpose = {m["purpose"]: m for m in out["mails"]}
    assert by_purpose["stage1"]["send_at"] == "2026-11-28T13:00:00+01:00"
    assert by_purpose["stage2"]["due_at"] == "2026-11-29T13:00:00+01:00"
    assert by_purpose["stage2"]["send_at"] == "2026-11-30T08:00:00+01:00"


# --- the ladder under a simulated scheduler (hypothesis) --------------------------------

moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 20), timezones=st.just(BERLIN)
)
durations = st.integers(min_value=0, max_value=24 * 60).map(lambda m: timedelta(minutes=m))


def _simulate(times: EscalationTimes, received: datetime) -> dict[str, datetime]:
    """Pass every five minutes as the scheduler does: mails leave only inside staff_window."""
    due = initial_due_times(CALENDAR, times, received)
    stage, soon, overdue, stage2 = 0, due.soon_at, due.overdue_at, due.stage2_at
    next_due: datetime | None = due.next_due_at
    sent: dict[str, datetime] = {}
    now = received.astimezone(UTC)
    end = now + timedelta(days=30)
    while next_due is not None and now < end:
        window = staff_window(CALENDAR, now)
        if window is not None and next_due <= window:
            progress = advance(stage, now, soon, overdue, stage2)
            for purpose in progress.purposes:
                sent[purpose] = now
            stage, next_due, stage2 = progress.stage, progress.next_due_at, progress.stage2_at
        now += STEP
    return sent


def _may_leave(moment: datetime) -> bool:
    if CALENDAR.is_open(moment):
        return True
    return moment - CALENDAR.last_closing(moment).astimezone(UTC) <= CLOSING_GRACE


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(received=moments, stage1=durations, before=durations, stage2=durations)
def test_simulated_scheduler_keeps_the_seed_rules(
    received: datetime, stage1: timedelta, before: timedelta, stage2: timedelta
) -> None:
    """Seed 002, all rules at once, for any receipt and any times: the reminder never leaves
    at or after stage 1; the salesperson always has the full stage-2 period between the
    stage-1 mail and the supervisor mail; every staff mail leaves inside the opening hours
    (or in the minutes right after a closing time, for what was due by then)."""
    times = EscalationTimes(stage1, before, stage2, ZERO)
    sent = _simulate(times, received)
    assert "stage1" in sent and "stage2" in sent
    if "reminder" in sent:
        assert sent["reminder"] < sent["stage1"]
    assert sent["stage2"] - sent["stage1"] >= max(stage2, STEP)
    assert all(_may_leave(moment) for moment in sent.values())


@settings(max_examples=200, deadline=None)
@given(received=moments, stage1=durations, before=durations, stage2=durations)
def test_timeline_reminder_and_stage2_follow_seed_002(
    received: datetime, stage1: timedelta, before: timedelta, stage2: timedelta
) -> None:
    """Seed 002 in the pure timeline: the reminder is ``stage 1 − reminder_before`` in
    continuous time (never before receipt), it never leaves after stage 1 unless skipped,
    and stage 2 is due the full stage-2 period after the stage-1 mail may leave."""
    line = timeline(CALENDAR, EscalationTimes(stage1, before, stage2, ZERO), received)
    utc = UTC
    expected = max(received, line.stage1_at - before)
    assert line.reminder_at.astimezone(utc) == expected.astimezone(utc)
    if not line.reminder_skipped:
        assert line.reminder_send_at < line.stage1_at
        assert [m["purpose"] for m in line.mails()][0] == "reminder"
    assert line.stage1_send_at == line.stage1_at  # a deadline is open time or a closing time
    assert line.stage2_at.astimezone(utc) - line.stage1_send_at.astimezone(utc) == stage2
    assert line.stage2_send_at >= line.stage2_at


# --- 4. info mails to staff honour the send window (seed 002) ---------------------------


def test_pool_notice_at_night_waits_for_the_opening_time(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 002: "Informations E-Mails an Nutzer / Vorgesetzte werden nur innerhalb der
    eingetragenen Öffnungszeiten versendet."  A pool notice decided Tuesday 04:42 leaves
    Tuesday 08:00, not at 04:42."""
    _setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-30 10:00"))
    night = at("2026-12-01 04:42")
    monkeypatch.setattr(notices, "utcnow", lambda: night.astimezone(UTC))
    with db.session_scope(dealer) as session:
        cfg = load_dealer_config(session)
        anna = session.scalars(select(User).where(User.email == "anna@autohaus.example")).one()
        sent = notices.enqueue_pool_notice(
            session,
            cfg,
            lead={"source": "web", "kind": "inquiry", "received_at": night},
            lead_id=lead_id,
            customer={"name": "Erika", "email": "erika@kunden.example"},
            recipients=[anna],
        )
    assert sent == 1
    with dealer() as session:
        send_after = session.scalars(
            select(OutboxMail.send_after).where(OutboxMail.purpose == "pool_notice")
        ).one()
    assert send_after.astimezone(UTC) == at("2026-12-01 08:00").astimezone(UTC)


def test_pool_notice_in_opening_hours_leaves_at_once(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rule's other side: decided while open, the notice is not held back."""
    _setup(dealer)
    lead_id = ingest_at(dealer, at("2026-11-30 10:00"))
    noon = at("2026-12-01 11:00")
    monkeypatch.setattr(notices, "utcnow", lambda: noon.astimezone(UTC))
    with db.session_scope(dealer) as session:
        cfg = load_dealer_config(session)
        anna = session.scalars(select(User).where(User.email == "anna@autohaus.example")).one()
        notices.enqueue_pool_notice(
            session,
            cfg,
            lead={"source": "web", "kind": "inquiry", "received_at": noon},
            lead_id=lead_id,
            customer={"name": "Erika", "email": "erika@kunden.example"},
            recipients=[anna],
        )
    with dealer() as session:
        send_after = session.scalars(
            select(OutboxMail.send_after).where(OutboxMail.purpose == "pool_notice")
        ).one()
    assert send_after.astimezone(UTC) == noon.astimezone(UTC)


def test_target_mail_is_written_to_the_protocol(dealer: sessionmaker[Session]) -> None:
    """The missed target is on the lead's protocol, so the page shows why the mail came."""
    _setup(dealer)
    lead = ingest_at(dealer, at("2026-11-30 08:00"))
    with db.session_scope(dealer) as session:
        cfg = load_dealer_config(session)
        set_qualification(
            session, cfg, lead, "anna@autohaus.example", at("2026-11-30 09:00"), "hot"
        )
    tick(dealer, now=at("2026-12-03 09:00"))
    tick(dealer, now=at("2026-12-03 10:00"))  # once only
    with dealer() as session:
        actions = session.scalars(
            select(ProtocolEntry.action).where(
                ProtocolEntry.lead_id == lead, ProtocolEntry.action == "target_missed"
            )
        ).all()
    assert actions == ["target_missed"]


def test_unassigned_inquiry_notice_at_night_waits_for_the_opening_time(
    dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 002: "Informations E-Mails an Nutzer / Vorgesetzte werden nur innerhalb der
    eingetragenen Öffnungszeiten versendet" - also the notice about a mail no lead could be
    made from (seed 002 "E-Mail neue nicht zugeordnete Anfrage"): decided at 04:42, sent 08:00."""
    from mailgate import pipeline
    from mailgate.config import Settings
    from mailgate.ingest.store import store_raw
    from mailgate.worker import process_pending

    from .mails import no_contact

    _setup(dealer)
    night = at("2026-12-01 04:42")
    monkeypatch.setattr(pipeline, "utcnow", lambda: night.astimezone(UTC))
    store_raw(dealer, no_contact(1), channel="smtp", envelope_to=["leads@autohaus.example"])
    process_pending(dealer, Settings())
    with dealer() as session:
        send_after = session.scalars(
            select(OutboxMail.send_after).where(OutboxMail.purpose == "unassigned")
        ).one()
    assert send_after.astimezone(UTC) == at("2026-12-01 08:00").astimezone(UTC)


class _Clock:
    """A lead's stored clock as the lead page reads it."""

    def __init__(self, soon_at: datetime, overdue_at: datetime, stage2_at: datetime) -> None:
        self.status, self.first_response_at, self.escalation_stage = "assigned", None, 0
        self.soon_at, self.overdue_at, self.stage2_at = soon_at, overdue_at, stage2_at


def test_the_lead_page_plans_the_mails_as_the_scheduler_sends_them() -> None:
    """Seed 002 on the lead page's plan: a stage-1 mail due at Saturday's closing leaves at
    13:00, and a reminder that could only leave at stage 1 is not planned."""
    from mailgate.webui.lead.ladder_view import steps_ahead

    saturday = _Clock(at("2026-11-28 12:00"), at("2026-11-28 13:00"), at("2026-11-29 13:00"))
    plan = [(s.purpose, s.send_at) for s in steps_ahead(saturday, CALENDAR)]
    assert plan == [
        ("reminder", at("2026-11-28 12:00")),
        ("stage1", at("2026-11-28 13:00")),
        ("stage2", at("2026-11-30 08:00")),
    ]
    skipped = _Clock(at("2026-11-29 22:00"), at("2026-11-30 08:00"), at("2026-12-01 08:00"))
    assert [s.purpose for s in steps_ahead(skipped, CALENDAR)] == ["stage1", "stage2"]
