"""Free-text scanners (parsers/scanners.py): values written in prose, and what they must refuse.

A wrong value is worse than none, so each scanner is tested as much on what it
rejects (an ad id or a postcode as a phone, a rate or a trade-in value as the
price, a plate as a stock number, a VIN with a wrong check digit) as on what
it finds.  Hostile inputs must stay linear.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.parsers import scanners
from mailgate.parsers.normalize import phone_e164


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Sie erreichen mich tagsüber unter 08031 123456.", "08031 123456"),
        ("Meine Nummer: 0176 12345678", "0176 12345678"),
        ("Rückruf bitte an +49 (0)89 2233445, danke", "+49 (0)89 2233445"),
        ("call me on 0171/2345678 after 5", "0171/2345678"),
    ],
)
def test_phone_numbers_in_prose(text: str, number: str) -> None:
    assert [hit.value for hit in scanners.phones(text)] == [number]


@pytest.mark.parametrize(
    "text",
    [
        "Inserat 123456789 gefällt mir",
        "Anzeigennummer: 0123456789",
        "PLZ 83022 Rosenheim, am 12.03.2024 um 10:30",
        "für 24.990 € und 0 km",
        "FIN WVWZZZ1JZXW000001",
        "Referenz 0815-4711",
        "Bestandsnummer 01712345678",
        "Angebotsnummer: 0891234567",
    ],
)
def test_ids_postcodes_dates_prices_and_vins_are_no_phone_numbers(text: str) -> None:
    assert scanners.phones(text) == []


def test_phone_uses_the_dealers_region() -> None:
    hits = scanners.phones("Bel me op 06 12345678", region="NL")
    assert [phone_e164(h.value, "NL") for h in hits] == ["+31612345678"]


def test_prices_skip_down_payments_rates_and_trade_in_values() -> None:
    text = (
        "Ist der Kuga für 24.990 € noch da? Anzahlung 5.000 €. Rate 299 EUR mtl.\n"
        "Mein Auto ist 3.000 € wert.\nPreis: EUR 12.500,-"
    )
    assert [hit.value for hit in scanners.prices(text)] == ["24.990", "12.500,-"]
    assert scanners.prices("Leasingrate 349 € pro Monat, 10.000 € Sonderzahlung") == []


def test_stock_number_in_parentheses_never_a_plate() -> None:
    assert [h.value for h in scanners.stock_numbers("den Octavia (Nr. 58213) bitte")] == ["58213"]
    assert [h.value for h in scanners.stock_numbers("den Golf [Ref: AB-12]")] == ["AB-12"]
    assert scanners.stock_numbers("(Nr. M-AB 1234)") == []
    assert scanners.is_plate("RO-AB 123") and scanners.is_plate("M AB 1234E")
    assert not scanners.is_plate("KU-20931")


def test_plates_are_captured() -> None:
    assert [h.value for h in scanners.plates("Kennzeichen RO-AB 123, EZ 03/2019")] == ["RO AB 123"]


def test_vin_check_digit_only_for_north_american_makes() -> None:
    assert scanners.is_vin("1M8GDM9AXKP042788")  # valid check digit (X)
    assert not scanners.is_vin("1M8GDM9A1KP042788")  # wrong check digit
    assert scanners.is_vin("WVWZZZ1JZXW000001")  # European: no check digit by law
    assert not scanners.is_vin("WVWZZZ1JZXW00000I")  # I is not in the VIN alphabet
    assert not scanners.is_vin("12345678901234567")  # digits only: an id, not a VIN
    assert [h.value for h in scanners.vins("FIN: wvwzzz1jzxw000001.")] == ["WVWZZZ1JZXW000001"]


def test_mileage_and_first_registration() -> None:
    text = "EZ 03/2019, 85.000 km, Baujahr 2017"
    assert [h.value for h in scanners.mileages(text)] == ["85.000"]
    assert [h.value for h in scanners.registrations(text)] == ["03/2019", "2017"]


def test_emails_with_context() -> None:
    hits = scanners.emails("Schreiben Sie an anna.berg@kunde.example oder rufen Sie an")
    assert hits[0].value == "anna.berg@kunde.example"
    assert "Schreiben Sie an" in hits[0].context


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="0123456789 +-/()., €EURkmNr:\n", max_size=400))
def test_scanners_never_raise_on_digit_soup(text: str) -> None:
    for scan in (scanners.phones, scanners.prices, scanners.mileages, scanners.vins):
        for hit in scan(text):
            assert hit.value and len(hit.context) <= 200


@pytest.mark.parametrize(
    "text",
    [
        "0" * 200_000,
        "€ 1" * 60_000,
        "(Nr. " * 50_000,
        "A" * 200_000,
        "1 km " * 40_000,
        "EZ " * 60_000,
    ],
)
def test_scanners_are_linear_on_adversarial_input(text: str) -> None:
    started = time.perf_counter()
    for scan in (
        scanners.phones,
        scanners.prices,
        scanners.mileages,
        scanners.registrations,
        scanners.plates,
        scanners.stock_numbers,
        scanners.vins,
        scanners.emails,
    ):
        scan(text)
    assert time.perf_counter() - started < 5.0


def test_listing_id_in_a_sentence() -> None:
    text = 'Ihre Anzeige "Mercedes-Benz A 180" (Anzeigennr. 24681357) hat eine Nachricht'
    assert [h.value for h in scanners.listing_ids(text)] == ["24681357"]
    assert scanners.listing_ids("(Nr. 4711)") == []  # a dealer's number, not an ad id


def test_name_in_a_platform_headline() -> None:
    text = "Neue Nachricht von Timo Reichert zu deinem Inserat\n"
    assert [h.value for h in scanners.headline_names(text)] == ["Timo Reichert"]
    english = "You have a new message from Daniel Whitmore about your listing"
    assert [h.value for h in scanners.headline_names(english)] == ["Daniel Whitmore"]
    assert scanners.headline_names("Die Nachricht von gestern war unklar") == []
