"""The make/model catalogue (parsers/catalogue.py, parsers/data/vehicles.json).

It must recognise a car in an offer line, a subject or prose, with the aliases
a dealer's inbox shows (VW, Mercedes/MB, Skoda/Škoda, Citroen, Alfa, BMW and
Mercedes model codes), and it must not turn prose into a car ("mini",
"Jazz-Konzert", "ein Up").  The data file is package data: an installed copy
has it.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import pytest

from mailgate.parsers.catalogue import catalogue, find_vehicle
from mailgate.parsers.normalize import normalise_make


@pytest.mark.parametrize(
    ("text", "make", "model"),
    [
        ("Ist der Ford Kuga noch da?", "Ford", "Kuga"),
        ("Anfrage: Škoda Octavia Combi RS", "Škoda", "Octavia Combi RS"),
        ("Skoda Fabia 1.0 TSI", "Škoda", "Fabia 1.0 TSI"),
        ("VW Golf 8 GTI, 24.990 EUR", "Volkswagen", "Golf 8 GTI"),
        ("BMW 320d Touring", "BMW", "320d Touring"),
        ("BMW 3er Limousine", "BMW", "3er Limousine"),
        ("Mercedes C 220 d T-Modell", "Mercedes-Benz", "C 220 d"),
        ("MB C-Klasse", "Mercedes-Benz", "C-Klasse"),
        ("Mercedes-Benz GLC 300 e", "Mercedes-Benz", "GLC 300 e"),
        ("Citroen C3 Aircross", "Citroën", "C3 Aircross"),
        ("Alfa Romeo Giulia Veloce", "Alfa Romeo", "Giulia Veloce"),
        ("Interesse an Ihrem Octavia", "Škoda", "Octavia"),
        ("Kia Sportage 1.6 T-GDI", "Kia", "Sportage 1.6 T-GDI"),
        ("Land Rover Range Rover Evoque", "Land Rover", "Range Rover Evoque"),
        ("Ihr Opel", "Opel", None),
    ],
)
def test_recognises_the_vehicle(text: str, make: str, model: str | None) -> None:
    found = find_vehicle(text)
    assert found is not None
    assert (found.make, found.model) == (make, model)


@pytest.mark.parametrize(
    "text",
    [
        "ich bin mit meinem Auto zufrieden, ein mini Problem",
        "nach dem Jazz Konzert komme ich vorbei",
        "ein Up oder Down ist egal",
        "das Note-Book liegt im Auto",
        "seat belt and leon from accounting",
        "",
    ],
)
def test_prose_is_no_vehicle(text: str) -> None:
    assert find_vehicle(text) is None


def test_every_make_is_canonical_for_the_normaliser() -> None:
    """The catalogue's make names are the ones finalize keeps (no second spelling)."""
    data = json.loads(
        resources.files("mailgate.parsers").joinpath("data/vehicles.json").read_text("utf-8")
    )
    for entry in data["makes"]:
        assert normalise_make(entry["name"]) == entry["name"], entry["name"]
        for alias in entry["aliases"]:
            assert catalogue().aliases[alias.lower()] in {entry["name"], "Land Rover"}


def test_the_data_file_is_package_data() -> None:
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"mailgate.parsers" = ["data/*.json"]' in text
    assert resources.files("mailgate.parsers").joinpath("data/vehicles.json").is_file()


def test_many_makes_and_models_are_known() -> None:
    cat = catalogue()
    assert len(cat.models) >= 50
    assert sum(len(models) for models in cat.models.values()) >= 500


def test_catalogue_is_linear_on_long_input() -> None:
    started = time.perf_counter()
    find_vehicle("VW " * 100_000)
    find_vehicle("x" * 1_000_000)
    find_vehicle("Golf 1 " * 50_000)
    assert time.perf_counter() - started < 3.0
