"""The substring gates in front of slow case-insensitive patterns never change a verdict.

:mod:`mailgate.parsers.gate` skips a pattern on texts that lack all of its
needles.  That is only safe if every text the pattern matches contains a
needle: hypothesis generates matches from each pattern and the gate must let
every one of them through; and on every fixture mail the gated search finds
exactly what the bare pattern finds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.parsers import forward, generic, website
from mailgate.parsers.gate import GatedPattern
from mailgate.parsers.message import load

GATED: dict[str, GatedPattern] = {
    "website._CF7_FOOTER": website._CF7_FOOTER,
    "website._FORM_WORDS": website._FORM_WORDS,
    "generic._QUOTE_HEADER": generic._QUOTE_HEADER,
    "forward._EXPLICIT_SEPARATOR": forward._EXPLICIT_SEPARATOR,
    "forward._OUTLOOK_SEPARATOR": forward._OUTLOOK_SEPARATOR,
}
FIXTURES = sorted((Path(__file__).parent / "fixtures" / "mails").rglob("*.eml"))


@pytest.mark.parametrize("name", sorted(GATED))
def test_every_match_passes_the_gate(name: str) -> None:
    gate = GATED[name]

    @settings(
        max_examples=300,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(st.from_regex(gate.pattern))
    def check(text: str) -> None:
        match = gate.pattern.search(text)
        if match is None:  # from_regex may pad with text the pattern rejects as a whole
            return
        assert gate.search(text) is not None, (name, text)

    check()


def test_gate_agrees_with_the_pattern_on_every_fixture() -> None:
    assert len(FIXTURES) > 200
    hits = 0
    for path in FIXTURES:
        view = load(path.read_bytes())
        for text in (view.text, view.text[:3000], view.text[-3000:], view.subject or ""):
            for name, gate in GATED.items():
                bare = gate.pattern.search(text)
                got = gate.search(text)
                assert (bare and bare.span()) == (got and got.span()), (path.name, name)
                hits += bare is not None
    assert hits > 0  # the corpus exercises the patterns, not only their gates
