"""The general field reader and the layered extractor on layouts the source parsers don't know.

Two parts: the layout fixtures in ``tests/fixtures/layouts/`` (beside, not
inside, ``fixtures/mails/``, whose folders name parsers): one mail per layout
class of issue 19 (AutoScout24 in German/Belgian French, prose forms, a name
only in the sign-off, header-row tables, definition lists, fixed-width
columns, ``key => value``, labels on their own line, a multipart/related
financing lead, a plate next to a stock-number label), checked end to end
through ``parse_raw``; and unit and property tests of
:mod:`mailgate.parsers.reader`: random renderings of the same fields (label
synonym, case, separator, layout, order) must read the same values.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.parsers import ParseContext, parse_raw
from mailgate.parsers.lexicon import FIELD_LABELS, field_of, fold
from mailgate.parsers.reader import read_html, read_text

LAYOUTS = Path(__file__).parent / "fixtures" / "layouts"
CASES = sorted(LAYOUTS.glob("*.eml"))
DEALER = ParseContext(dealer_addresses=frozenset({"leads@autohaus-beispiel.example"}), region="DE")
CHECKS = ("message_contains", "message_excludes", "context")


def _context(spec: dict[str, Any] | None) -> ParseContext:
    if not spec:
        return DEALER
    return ParseContext(
        dealer_addresses=frozenset(spec.get("dealer_addresses", [])),
        region=spec.get("region", "DE"),
    )


def _subset(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            _subset(value, actual[key], f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


def test_there_is_a_fixture_per_layout_class() -> None:
    assert len(CASES) >= 14


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_layout_fixture(path: Path) -> None:
    spec = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    output = parse_raw(path.read_bytes(), ctx=_context(spec.get("context"))).to_json(path.name)
    _subset({k: v for k, v in spec.items() if k not in CHECKS}, output, path.stem)
    message = output["message"] or ""
    for text in spec.get("message_contains", []):
        assert text in message, f"{path.stem}: message lacks {text!r}: {message!r}"
    for text in spec.get("message_excludes", []):
        assert text not in message, f"{path.stem}: message still has {text!r}"


# --- the lexicon ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("Ihre E-Mail-Adresse*", "email"),
        ("E-mail adres", "email"),
        ("TÉLÉPHONE", "phone"),
        ("Tel.-Nr.", "phone"),
        ("Händler-Fahrzeugnummer", "stock_number"),
        ("Stock no.", "stock_number"),
        ("Advertentienummer", "listing_id"),
        ("Annonce n°", "listing_id"),
        ("Numero annuncio", "listing_id"),
        ("Ihre Frage", "message"),
        ("Opmerking", "message"),
        ("Fahrgestellnummer", "vin"),
        ("Chassisnummer", "vin"),
        ("Telefon (optional)", "phone"),
        ("Uw naam", "name"),
    ],
)
def test_lexicon_folds_inflections_and_languages(label: str, key: str) -> None:
    assert field_of(label) == key


def test_every_lexicon_label_maps_back_to_its_field() -> None:
    """A label listed under two fields would be read as the first one only: say so here."""
    clashes = {}
    for key, labels in FIELD_LABELS.items():
        for label in labels:
            if field_of(label) != key:
                clashes[label] = (key, field_of(label))
    assert not clashes, clashes


def test_fold_is_insensitive_to_case_accents_and_punctuation() -> None:
    assert fold("Téléphone :") == fold("telephone") == "telephone"
    assert fold("Straße") == fold("STRASSE")


# --- the text reader ------------------------------------------------------------------


def _values(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in read_text(text):
        found.setdefault(pair.key, pair.value)
    return found


def test_reads_separators_and_layouts() -> None:
    text = (
        "Name:  Peter Lustig\n"
        "Telefon :   0171 2345678\n"
        "E-Mail => p.lustig@kunde.example\n"
        "Fahrzeug\nVW Golf 8\n"
        "Preis 24.990 EUR\n"
        "Bestandsnummer\t4711\n"
    )
    assert _values(text) == {
        "name": "Peter Lustig",
        "phone": "0171 2345678",
        "email": "p.lustig@kunde.example",
        "vehicle": "VW Golf 8",
        "price": "24.990 EUR",
        "stock_number": "4711",
    }


def test_message_block_runs_to_the_next_label_and_stops_at_a_footer() -> None:
    text = (
        "Nachricht\nHallo,\n\nist der Wagen noch da?\nGruß Anna\n"
        "Bitte beantworte die Nachricht über den Antworten-Button.\nTelefon: 0171 1234567\n"
    )
    assert _values(text)["message"] == "Hallo,\n\nist der Wagen noch da?\nGruß Anna"
    text = "Ihre Frage: Noch da?\nMit Anhänger?\nE-Mail: a@kunde.example\n"
    assert _values(text)["message"] == "Noch da?\nMit Anhänger?"


def test_prose_is_not_split_into_label_and_value() -> None:
    values = _values("Fahrzeug ist super, Name vergessen.\nNachricht folgt später\n")
    assert "vehicle" not in values and "name" not in values


def test_a_value_on_the_next_line_must_fit_the_field() -> None:
    assert "phone" not in _values("Telefon\nbitte nur per Mail\n")
    assert "email" not in _values("E-Mail\nName: Peter\n")


def test_trade_in_block_is_a_section_of_its_own() -> None:
    pairs = read_text("Modell: Golf\nInzahlungnahme\nModell: Polo\nKilometerstand: 120.000\n")
    sections = {(p.key, p.value): p.section for p in pairs}
    assert sections[("model", "Golf")] == "main"
    assert sections[("model", "Polo")] == "trade_in"


def test_html_tables_header_rows_and_definition_lists() -> None:
    markup = (
        "<table><tr><th>Name</th><th>Telefon</th></tr><tr><td>Anna Berg</td>"
        "<td>0171 11223344</td></tr></table>"
        "<table><tr><td><b>Preis:</b></td><td>24.990,00 &euro;</td></tr></table>"
        "<dl><dt>Ihre Frage</dt><dd>Noch da?</dd></dl>"
    )
    found = {p.key: (p.value, p.layout) for p in read_html(markup)}
    assert found["name"] == ("Anna Berg", "table: header row")
    assert found["phone"] == ("0171 11223344", "table: header row")
    assert found["price"] == ("24.990,00 €", "table: label column")
    assert found["message"] == ("Noch da?", "definition list")


def test_marketing_table_is_not_customer_data() -> None:
    markup = (
        "<table><tr><td>Name</td><td>Anna Berg</td></tr>"
        "<tr><td>Marketing Informationen</td></tr><tr><td>Land</td><td>Germany</td></tr></table>"
    )
    keys = {p.key for p in read_html(markup)}
    assert "name" in keys and "country" not in keys


# --- property: renderings of the same fields read the same ------------------------------

FIELDS = {
    "name": "Clara Winter",
    "email": "clara.winter@kunde.example",
    "phone": "0171 2345678",
    "stock_number": "ST-4711",
    "price": "24.990 €",
}
SEPARATORS = (": ", " : ", " => ", "\t", "    ", ":\n")


@st.composite
def renderings(draw: st.DrawFn) -> str:
    keys = draw(st.permutations(sorted(FIELDS)))
    lines = []
    for key in keys:
        label = draw(st.sampled_from(FIELD_LABELS[key]))
        label = draw(st.sampled_from((label, label.upper(), label.lower())))
        separator = draw(st.sampled_from(SEPARATORS))
        star = draw(st.sampled_from(("", "*")))
        lines.append(f"{label}{star}{separator}{FIELDS[key]}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(renderings())
def test_any_rendering_reads_the_same_fields(text: str) -> None:
    assert _values(text) == FIELDS


@settings(max_examples=60, deadline=None)
@given(renderings())
def test_text_and_html_table_renderings_agree(text: str) -> None:
    rows = []
    for line in text.replace(":\n", ": ").splitlines():
        for separator in (" => ", " : ", ": ", "\t", "    "):
            if separator in line:
                label, _, value = line.partition(separator)
                rows.append(f"<tr><td>{label}</td><td>{value}</td></tr>")
                break
    found = {p.key: p.value for p in read_html("<table>" + "".join(rows) + "</table>")}
    assert found == FIELDS


# --- hostile input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Name" + " " * 100_000 + "x",
        ("Telefon:" + "0" * 5000 + "\n") * 50,
        "a:" * 100_000,
        "=>" * 100_000,
        "<tr><td>" * 50_000,
        "<dt>" + "x" * 100_000,
        "Nachricht\n" + "Bla bla bla\n" * 30_000,
    ],
)
def test_reader_is_linear_on_adversarial_input(text: str) -> None:
    started = time.perf_counter()
    read_text(text)
    read_html(text)
    assert time.perf_counter() - started < 3.0


def test_pipe_separated_pairs() -> None:
    text = "Anrede: Herr | Vorname: Rainer | Nachname: Stolz\nE-Mail: r.stolz@kunde.example\n"
    values = _values(text)
    assert (values["salutation"], values["first_name"], values["last_name"]) == (
        "Herr",
        "Rainer",
        "Stolz",
    )


def test_unlabelled_contact_block_under_a_customer_heading() -> None:
    text = (
        "Kunde\nFrau Claudia Nowak\nclaudia.nowak@kunde.example\n+49 (0)711 2233445\n\n"
        "Nachricht\nWas ist mein Wagen wert?\n"
    )
    values = _values(text)
    assert values["name"] == "Frau Claudia Nowak"
    assert values["email"] == "claudia.nowak@kunde.example"
    assert values["phone"] == "+49 (0)711 2233445"
    assert values["message"] == "Was ist mein Wagen wert?"
    # a heading followed by prose reads nothing
    assert "name" not in _values("Kontaktdaten:\nbitte nur per Mail, danke.\n")


def test_label_value_forms_read_every_label_the_same_way() -> None:
    """Bold labels without colons: once two shaped values show the layout, names and the
    message are read the same way; prose with a label word in front stays prose."""
    text = (
        "First name Maximilian\nLast name von Berg\nE-mail max.berg@kunde.example\n"
        "Phone +49 89 44556677\n\nComments I would like a test drive next week.\n"
    )
    values = _values(text)
    assert (values["first_name"], values["last_name"]) == ("Maximilian", "von Berg")
    assert values["message"] == "I would like a test drive next week."
    assert "first_name" not in _values("First name Maximilian\nHallo zusammen\n")


def test_customer_after_a_trade_in_block_is_still_the_customer() -> None:
    raw = (
        b"From: AutoScout24 <noreply@autoscout24.de>\nTo: leads@autohaus-beispiel.example\n"
        b"Subject: Neue Anfrage\nMessage-ID: <t1@autoscout24.de>\n"
        b"Content-Type: text/plain; charset=utf-8\n\n"
        b"Ihr Angebot\nSkoda Superb Combi 2.0 TDI\n\nFahrzeug zur Inzahlungnahme\n"
        b"Marke/Modell: Audi Q5 2.0 TDI\nKilometerstand: 98.000 km\n\n"
        b"Kunde\nFrau Claudia Nowak\nclaudia.nowak@kunde.example\n+49 711 2233445\n\n"
        b"Nachricht\nWas ist mein Q5 wert?\n"
    )
    lead = parse_raw(raw, ctx=DEALER)
    assert (lead.customer.name, lead.customer.phone_e164) == ("Claudia Nowak", "+497112233445")
    assert lead.vehicle.make == "Škoda" and lead.vehicle.mileage is None
    assert lead.message == "Was ist mein Q5 wert?"
