from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import (
    SettingsError,
    export_settings,
    import_settings,
    load_dealer_config,
    parse_duration,
)
from mailgate.models import User

from .conftest import DEALER_TOML

FULL = """
[dealer]
name = "Autohaus Beispiel"
timezone = "Europe/Berlin"
language = "de"
from_name = "Autohaus Beispiel – Verkauf"
addresses = ["leads@autohaus.example"]
admin_address = "admin@autohaus.example"
unassigned_notice_to = "zentrale@autohaus.example"
send_mails = true
reply_mode = "relay"

[hours]
mon = ["08:00-12:00", "13:00-18:00"]
sat = ["09:00-13:00"]
sun = []

[holidays]
country = "DE"
subdivision = "BY"
categories = ["public", "catholic"]
closures = ["2026-12-24", "2026-12-31"]

[escalation]
stage1 = "4h"
reminder_before = "1h"
stage2 = "24h"
stage2_resubmission = "8h"
respect_hours_for_resubmissions = false
[[escalation.rules]]
match = { source = ["oem:*"] }
stage1 = "2h"

[distribution]
mode = "rolling"
fallback_user = "chef@autohaus.example"
trade_in_cc = "ankauf@autohaus.example"

[[users]]
email = "anna@autohaus.example"
name = "Anna Schmidt"
role = "salesperson"
supervisor = "chef@autohaus.example"
groups = ["neuwagen"]
locations = ["muenchen"]
absences = [{ from = 2026-12-01, until = "2026-12-05", substitute = "chef@autohaus.example" }]

[[users]]
email = "chef@autohaus.example"
name = "Carl Chef"
role = "supervisor"

[[groups]]
name = "neuwagen"
match = { source = ["oem:*"], kind = ["test_drive"] }

[[imap]]
name = "verkauf"
host = "imap.provider.example"
username = "leads@autohaus.example"
password_file = "/etc/mailgate/imap.secret"
"""


def test_import_export_round_trip(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        import_settings(session, FULL)
    with factory() as session:
        exported = export_settings(session)
        config = load_dealer_config(session)
    assert config.addresses == ("leads@autohaus.example",)
    assert config.fallback_user == "chef@autohaus.example"
    assert config.stage1 == parse_duration("4h")
    with session_scope(factory) as session:
        import_settings(session, exported)
    with factory() as session:
        assert export_settings(session) == exported
        anna = session.scalar(select(User).where(User.email == "anna@autohaus.example"))
        assert anna is not None and anna.absences[0]["from"] == "2026-12-01"
    assert 'stage1 = "2h"' in exported and "[[imap]]" in exported


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("send_mails = true", "send_mails = 1"), "dealer.send_mails must be true or false"),
        (("reply_mode", "reply_mood"), "unknown key dealer.reply_mood"),
        (('substitute = "chef@', 'substitute = "nobody@'), r"users\[0\].absences\[0\].substitute"),
        (('stage1 = "4h"', 'stage1 = "4 hours"'), "escalation.stage1"),
        (('"13:00-18:00"', '"18:00-13:00"'), "hours.mon"),
        (('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"'), "dealer.timezone"),
        (('mode = "rolling"', 'mode = "random"'), "distribution.mode"),
        (("[[groups]]", "[[grups]]"), r"unknown section \[grups\]"),
        # a trailing line break is no part of an address or a time (regex "$" would allow it)
        (('["leads@autohaus.example"]', '["leads@autohaus.example\\n"]'), "dealer.addresses"),
        (('admin_address = "admin@autohaus.example"', 'admin_address = "a@b.example\\n"'), "admin"),
        (('"13:00-18:00"', '"13:00-18:00\\n"'), "hours.mon"),
    ],
)
def test_invalid_documents_change_nothing(
    factory: sessionmaker[Session], change: tuple[str, str], message: str
) -> None:
    with session_scope(factory) as session:
        import_settings(session, DEALER_TOML)
    with factory() as session:
        before = export_settings(session)
    with pytest.raises(SettingsError, match=message):
        with session_scope(factory) as session:
            import_settings(session, FULL.replace(*change, 1))
    with factory() as session:
        assert export_settings(session) == before


def test_users_missing_from_a_new_import_are_deactivated(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        import_settings(session, FULL)
    with session_scope(factory) as session:
        import_settings(
            session, FULL.split("[[users]]")[0] + '[[users]]\nemail = "chef@autohaus.example"\n'
        )
    with factory() as session:
        anna = session.scalar(select(User).where(User.email == "anna@autohaus.example"))
        assert anna is not None and anna.active is False


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("4h", 14400), ("1h30m", 5400), ("2d", 172800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "4", "h", "4 h", "-1h", "1h-30m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# --- [[completion_reasons]] -------------------------------------------------------------------

REASONS = """
[[completion_reasons]]
code = "sold"
label = "Verkauft"
outcome = "won"

[[completion_reasons]]
code = "no_interest"
label = "Kein Interesse"
outcome = "lost"
hidden = true

[[completion_reasons]]
code = "duplicate"
"""


def test_completion_reasons_round_trip_and_defaults(factory: sessionmaker[Session]) -> None:
    from mailgate.completion import DEFAULT_REASONS, completion_reasons

    with session_scope(factory) as session:
        import_settings(session, FULL)
    with factory() as session:
        # Without a list the defaults apply, and the export stays free of them.
        config = load_dealer_config(session)
        assert completion_reasons(config.document) == list(DEFAULT_REASONS)
        assert "[[completion_reasons]]" not in export_settings(session)
    with session_scope(factory) as session:
        import_settings(session, FULL + REASONS)
    with factory() as session:
        exported = export_settings(session)
        reasons = completion_reasons(load_dealer_config(session).document)
    assert [(r.code, r.label, r.outcome, r.hidden) for r in reasons] == [
        ("sold", "Verkauft", "won", False),
        ("no_interest", "Kein Interesse", "lost", True),
        ("duplicate", "duplicate", "other", False),  # label defaults to the code
    ]
    with session_scope(factory) as session:
        import_settings(session, exported)
    with factory() as session:
        assert export_settings(session) == exported


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('code = "duplicate"', 'code = "Doppelt!"'), r"completion_reasons\[2\].code must be"),
        (('code = "duplicate"', 'code = "sold"'), r"completion_reasons\[2\].code: duplicate"),
        (('outcome = "won"', 'outcome = "maybe"'), r"completion_reasons\[0\].outcome must be"),
        (("hidden = true", 'hidden = "ja"'), r"completion_reasons\[1\].hidden must be true"),
        (('code = "duplicate"', 'colour = "red"'), r"unknown key completion_reasons\[2\].colour"),
    ],
)
def test_invalid_completion_reasons_are_refused(
    factory: sessionmaker[Session], change: tuple[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        with session_scope(factory) as session:
            import_settings(session, FULL + REASONS.replace(*change, 1))


def test_a_used_reason_code_cannot_be_removed(factory: sessionmaker[Session]) -> None:
    from mailgate.models import Lead

    with session_scope(factory) as session:
        import_settings(session, FULL + REASONS)
        session.add(
            Lead(
                dedupe_key="r-1",
                reply_token="r-1",
                subject="x",
                status="closed",
                close_reason="no_interest",
            )
        )
    without = FULL + REASONS.split('[[completion_reasons]]\ncode = "no_interest"')[0]
    with pytest.raises(SettingsError, match="no_interest"):
        with session_scope(factory) as session:
            import_settings(session, without)
    # Hiding it is the way; a default code used before any list existed counts too.
    with session_scope(factory) as session:
        import_settings(session, FULL + REASONS)
        session.add(
            Lead(
                dedupe_key="r-2",
                reply_token="r-2",
                subject="y",
                status="closed",
                close_reason="unreachable",
            )
        )
    with pytest.raises(SettingsError, match="unreachable"):
        with session_scope(factory) as session:
            import_settings(session, FULL + REASONS)
