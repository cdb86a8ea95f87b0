"""``mailgate parse --explain``: every field with the reader that found it and the losers.

The admin's tool for a new layout (issue 19 item 7): the report must name the
layer (source parser, general reader, scanner, catalogue, subject), the label
or the words a value came from, and a value another layer offered that lost.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mailgate.parsers import ParseContext, parse_raw
from mailgate.parsers.explain import explain
from mailgate.parsers.model import READERS

LAYOUTS = Path(__file__).parent / "fixtures" / "layouts"
DEALER = ParseContext(dealer_addresses=frozenset({"leads@autohaus-beispiel.example"}))


def _report(name: str) -> str:
    path = LAYOUTS / f"{name}.eml"
    return explain(parse_raw(path.read_bytes(), ctx=DEALER), str(path))


def test_each_field_names_its_reader_and_label() -> None:
    report = _report("as24-de-angebot-bare-message")
    assert "customer.email: 'jonas.feldmann@kunde.example'  ← source parser (autoscout24)" in report
    assert (
        "vehicle.stock_number: 'KU-20931'  ← general reader "
        "(label 'Händler-Fahrzeugnummer' (label: value))" in report
    )
    assert "message: 'Guten Tag, ist der Kuga noch verfügbar?" in report
    assert "← general reader (label 'Nachricht' (label alone))" in report


def test_a_losing_value_is_shown_with_the_reason() -> None:
    report = _report("as24-de-angebot-bare-message")
    assert "vehicle.model: 'Kuga 2.5 PHEV ST-Line'" in report
    assert "lost: source parser autoscout24: 'Angebot' (names no known vehicle)" in report


def test_scanner_and_catalogue_values_quote_the_words_they_came_from() -> None:
    report = _report("website-prose-signoff")
    phone = next(line for line in report.splitlines() if line.startswith("customer.phone"))
    assert "← scanner (message:" in phone and "unter 08031 123456" in phone
    stock = next(line for line in report.splitlines() if line.startswith("vehicle.stock_number"))
    assert "'58213'  ← scanner" in stock and "(Nr. 58213)" in stock
    make = next(line for line in report.splitlines() if line.startswith("vehicle.make"))
    assert "'Škoda'  ← catalogue" in make


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
    assert "lost: general reader label 'Mobil' (label: value): '0160 9999999'" in report


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
    assert "customer.phone: '08031 123456'  ← scanner" in result.stdout
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
