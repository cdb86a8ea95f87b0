"""``mailgate parse --explain``: every field with the reader that found it and the losers.

The admin's tool for a new layout (issue 19 item 7): the report must name the
layer (source parser, general reader, scanner, catalogue, subject), the label
or the words a value came from, and a value another layer offered that lost.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from mailgate.parsers import ParseContext, parse_raw
from mailgate.parsers.explain import _LAYOUT_WORDS, FIELD_WORDS, explain
from mailgate.parsers.model import READERS

LAYOUTS = Path(__file__).parent / "fixtures" / "layouts"
UNSEEN = Path(__file__).parent / "fixtures" / "mails" / "unseen"
DEALER = ParseContext(dealer_addresses=frozenset({"leads@autohaus-beispiel.example"}))


def _report(name: str) -> str:
    path = LAYOUTS / f"{name}.eml"
    return explain(parse_raw(path.read_bytes(), ctx=DEALER), str(path))


def test_each_field_names_its_reader_and_label() -> None:
    report = _report("as24-de-angebot-bare-message")
    assert (
        "customer.email (customer's e-mail): 'jonas.feldmann@kunde.example'  ← source parser: "
        "the autoscout24 parser's own rules for this source's layout" in report
    )
    assert (
        "vehicle.stock_number (the dealer's stock number): 'KU-20931'  ← general reader: "
        "the label 'Händler-Fahrzeugnummer' in a 'Label: value' line" in report
    )
    assert "message: 'Guten Tag, ist der Kuga noch verfügbar?" in report
    assert "← general reader: the label 'Nachricht' alone on its line, the text below it" in report


def test_a_losing_value_is_shown_with_the_reason() -> None:
    report = _report("as24-de-angebot-bare-message")
    assert "vehicle.model (vehicle model): 'Kuga 2.5 PHEV ST-Line'" in report
    assert (
        "    vehicle.model lost: 'Angebot' from source parser: the autoscout24 parser's own "
        "rules for this source's layout (names no known vehicle)" in report
    )


def test_scanner_and_catalogue_values_quote_the_words_they_came_from() -> None:
    report = _report("website-prose-signoff")
    phone = next(line for line in report.splitlines() if line.startswith("customer.phone"))
    assert "← scanner: found in the customer's message, in '" in phone
    assert "unter 08031 123456" in phone
    stock = next(line for line in report.splitlines() if line.startswith("vehicle.stock_number"))
    assert "'58213'  ← scanner" in stock and "(Nr. 58213)" in stock
    make = next(line for line in report.splitlines() if line.startswith("vehicle.make"))
    assert "'Škoda'  ← catalogue" in make


_FIELD_LINE = re.compile(
    r"^(?P<path>[a-z_.]+)(?: \((?P<words>[^()]+)\))?: (?P<value>.+?)  ← (?P<how>.*)$"
)


def test_every_line_names_its_field_and_the_rule_in_words() -> None:
    """No bare label codes: each field line has the field's path and words, the layer and how.

    Checked on every layout and unseen fixture, which between them use every layer
    and every layout the general reader knows.
    """
    paths = sorted(LAYOUTS.glob("*.eml")) + sorted(UNSEEN.glob("*/*.eml"))
    layouts_seen: set[str] = set()
    for path in paths:
        report = explain(parse_raw(path.read_bytes(), ctx=DEALER))
        for line in report.splitlines():
            assert "label ''" not in line and "()" not in line, (path.name, line)
            for code in ("(label: value)", "(label alone)", "(next line)", "(table: "):
                assert code not in line, (path.name, line)
            if line.startswith("    "):
                path_lost, _, rest = line.strip().partition(" lost: ")
                assert path_lost in FIELD_WORDS and " from " in rest, (path.name, line)
                continue
            match = _FIELD_LINE.match(line)
            if match is None:
                continue
            assert match["path"] in FIELD_WORDS, line
            if match["path"] != "message":
                assert match["words"] == FIELD_WORDS[match["path"]], line
            reader, _, how = match["how"].partition(": ")
            assert reader in READERS or reader == "finalize", line
            assert len(how.split()) >= 3, line  # a rule in words, not a bare name
            if reader == "general reader":
                layouts_seen.update(w for w in _LAYOUT_WORDS.values() if w in how)
    # the fixtures exercise most layouts, so the check above covers their wording
    assert len(layouts_seen) >= 6, layouts_seen


def test_fields_nobody_found_are_listed() -> None:
    report = _report("direct-subject-vehicle-free-phone")
    assert "not found:" in report
    assert "vehicle.vin" in report.splitlines()[-1] or "vehicle.vin" in report


def test_every_reader_in_a_report_is_a_known_layer() -> None:
    for path in sorted(LAYOUTS.glob("*.eml")):
        report = explain(parse_raw(path.read_bytes(), ctx=DEALER))
        for line in report.splitlines():
            if "  ← " in line:
                reader = line.split("  ← ", 1)[1]
                assert reader.startswith(READERS) or reader.startswith("finalize"), line


def test_a_conflict_is_reported_and_lowers_confidence() -> None:
    raw = (LAYOUTS / "as24-de-angebot-bare-message.eml").read_bytes()
    # the parser reads "Telefon:"; a second, differing labelled phone above it disagrees
    raw = raw.replace(b"Angebot: Ford", b"Mobil: 0160 9999999\nAngebot: Ford", 1)
    plain = parse_raw((LAYOUTS / "as24-de-angebot-bare-message.eml").read_bytes(), ctx=DEALER)
    lead = parse_raw(raw, ctx=DEALER)
    assert lead.customer.phone == "0171 4455667"  # the source parser still wins
    assert lead.confidence < plain.confidence
    assert any(w.startswith("please check phone") for w in lead.warnings)
    report = explain(lead)
    assert (
        "customer.phone lost: '0160 9999999' from general reader: the label 'Mobil' in a "
        "'Label: value' line (source parser wins)" in report
    )


def test_cli_prints_the_report(tmp_path: Path) -> None:
    path = LAYOUTS / "website-prose-signoff.eml"
    result = subprocess.run(
        [sys.executable, "-m", "mailgate", "parse", "--explain", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    assert result.stdout.startswith(f"== {path}")
    assert "customer.phone (customer's phone): '08031 123456'  ← scanner: " in result.stdout
    missing = tmp_path / "missing.eml"
    result = subprocess.run(
        [sys.executable, "-m", "mailgate", "parse", "--explain", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    assert '"error"' in result.stdout
