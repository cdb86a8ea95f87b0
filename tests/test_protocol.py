"""Protocol lines as phrases: checked when written, worded in English and German when read."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from mailgate.protocol import (
    PHRASES,
    Phrase,
    PhraseError,
    english,
    legacy_phrases,
    phrase,
    phrases_of,
    placeholders,
    render_all,
)
from mailgate.webui import i18n

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_phrase_is_checked_against_its_wording_when_written() -> None:
    with pytest.raises(PhraseError, match="unknown"):
        phrase("no_such_phrase")
    with pytest.raises(PhraseError, match=r"takes \['user'\]"):
        phrase("taken_by", user="a@x.example", extra="1")
    with pytest.raises(PhraseError, match="must be text"):
        phrase("taken_by", user=object())


def test_english_detail_nests_reason_chains_and_shows_times_in_the_dealers_zone() -> None:
    steps = [
        phrase("absent_substitute", user="a@x.example", until_on=date(2026, 12, 4), substitute="b"),
        phrase("next_in_turn", rotation=[phrase("group", group="VW")]),
    ]
    lines = [
        phrase("assigned_to", user="b@x.example", reason=steps),
        phrase("resubmission_on", when_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
    ]
    assert english(lines, BERLIN) == (
        "to b@x.example: a@x.example absent until 2026-12-04 → substitute b"
        " → group VW: next in turn; resubmission on 01.12.2026 09:00"
    )


def test_phrases_survive_the_json_column_unchanged() -> None:
    original = [
        phrase("not_assigned", reason=[phrase("no_fallback"), phrase("nobody_can_take")]),
        phrase("maybe_same_customer", customer=7, score=92),
    ]
    stored = [p.to_json() for p in original]
    assert phrases_of(stored) == original
    assert phrases_of(None) is None and phrases_of([]) is None
    assert phrases_of([{"no": "code"}]) is None  # a damaged row falls back to its English text


def test_every_phrase_is_translated_with_the_same_placeholders() -> None:
    """The German catalog of the lead page words every phrase, keeping each ``{name}``."""
    catalog = i18n.read_catalog("lead")
    for code, wording in PHRASES.items():
        assert wording in catalog and catalog[wording].string, f"{code} is not translated"
        german = str(catalog[wording].string)
        fields = {name for _, name, _, _ in string.Formatter().parse(german) if name}
        assert fields == placeholders(wording), code


def test_rendering_uses_the_given_words_and_values() -> None:
    german = {PHRASES["taken_by"]: "von {user} übernommen", PHRASES["note"]: "Notiz: {note}"}
    text = render_all(
        [phrase("taken_by", user="a@x.example"), phrase("note", note="Rückruf")],
        lambda msgid: german.get(msgid, msgid),
        lambda key, value: str(value).upper() if key == "user" else str(value),
    )
    assert text == "von A@X.EXAMPLE übernommen; Notiz: Rückruf"
    broken = render_all(
        [phrase("taken_by", user="a")], lambda msgid: "{user!z}", lambda k, v: str(v)
    )
    assert broken == "taken from the pool by a"  # a broken translation falls back to English


def test_old_english_lines_are_read_back_as_phrases() -> None:
    assert legacy_phrases("notification to anna@autohaus.example queued") == [
        Phrase("notification_queued", {"user": "anna@autohaus.example"})
    ]
    (found,) = legacy_phrases("deleted (was assigned)") or []
    assert found == Phrase("deleted_was", {"status": "assigned"})
    assert legacy_phrases("something nobody ever wrote") is None
