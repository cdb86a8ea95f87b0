"""The lead list's search finds marketplace numbers (issue 20, item 10).

A digit string used to be read as a phone number only: ``412345678`` (a mobile.de listing
id, 9 digits) became ``+49412345678`` and found nothing; a 6-digit test hid it because six
digits are no valid phone number.  Now a number is searched as typed (listing id, stock
number, the source's lead number, part of a phone number), as a phone number in E.164, and
as the lead number.  Also make, model, licence plate, stock number and VIN (whole or its
last characters).  Realistic ids, every phone spelling, both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import Customer, Lead, User
from mailgate.webui.leads.query import lead_number, search_alternatives

from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ANNA,
    CARL,
    app_fixture,
    team_fixture,
)
from .webui_helpers import logged_in

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def make_lead(
    factory: sessionmaker[Session],
    key: str,
    *,
    owner: str = ANNA,
    customer: dict[str, Any] | None = None,
    vehicle: dict[str, Any] | None = None,
    **values: Any,
) -> int:
    with factory.begin() as session:
        assignee = session.query(User.id).filter(User.email == owner).scalar()
        row = Customer(created_at=NOW, **(customer or {"name": "Kunde " + key.replace("_", " ")}))
        session.add(row)
        session.flush()
        lead = Lead(
            dedupe_key=f"sn-{key}",
            reply_token=f"sn-token-{key}",
            customer_id=row.id,
            assignee_id=assignee,
            status="assigned",
            vehicle=vehicle or {},
            received_at=NOW - timedelta(minutes=len(key)),
            **values,
        )
        session.add(lead)
        session.flush()
        return lead.id


@pytest.fixture(name="leads")
def leads_fixture(team: sessionmaker[Session]) -> dict[str, int]:
    return {
        "mobile": make_lead(
            team,
            "mobile",
            vehicle={"make": "Opel", "model": "Astra", "listing_id": "412345678"},
        ),
        "as24_uuid": make_lead(
            team,
            "as24_uuid",
            vehicle={"make": "Kia", "listing_id": "0c4d7a5e-1b2f-4c3d-9e8f-6a7b8c9d0e1f"},
        ),
        "as24_8": make_lead(team, "as24_8", vehicle={"make": "Skoda", "listing_id": "87654321"}),
        "ten": make_lead(team, "ten", vehicle={"model": "Corsa", "listing_id": "3456789012"}),
        "stock": make_lead(team, "stock", vehicle={"make": "Ford", "stock_number": "STK-4711"}),
        "vin": make_lead(
            team, "vin", vehicle={"make": "VW", "model": "Golf", "vin": "WVWZZZ1JZXW987650"}
        ),
        "plate": make_lead(team, "plate", vehicle={"make": "BMW", "plate": "M-AB 1234"}),
        "plate_extras": make_lead(team, "plate_extras", extras={"plate": "A-XY 987"}),
        "oem": make_lead(team, "oem", source="oem:nissan", source_ref="NIS-2026-000815"),
        "phone": make_lead(
            team,
            "phone",
            customer={
                "name": "Tim Telefon",
                "phone": "0170 5550199",
                "phone_e164": "+491705550199",
            },
        ),
        "carl": make_lead(
            team, "carl", owner=CARL, vehicle={"make": "Opel", "listing_id": "412345679"}
        ),
    }


def found(client: Any, query: str) -> str:
    response = client.get("/leads", query_string={"q": query})
    assert response.status_code == 200, query
    return response.get_data(as_text=True)


def ids_in(text: str, leads: dict[str, int]) -> set[str]:
    return {key for key, lead_id in leads.items() if f'href="/leads/{lead_id}"' in text}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("412345678", {"mobile"}),  # mobile.de: 9 digits (Carl's 412345679 is not Anna's)
        ("0c4d7a5e-1b2f-4c3d-9e8f-6a7b8c9d0e1f", {"as24_uuid"}),  # AutoScout24 offer UUID
        ("0C4D7A5E", {"as24_uuid"}),  # its beginning, any case
        ("87654321", {"as24_8"}),  # AutoScout24: 8 digits
        ("3456789012", {"ten"}),  # 10 digits
        ("STK-4711", {"stock"}),
        ("stk-4711", {"stock"}),
        ("WVWZZZ1JZXW987650", {"vin"}),  # the whole VIN
        ("987650", {"vin"}),  # its last 6 characters
        ("W987650", {"vin"}),  # its last 7
        ("opel astra", {"mobile"}),  # make and model
        ("Golf", {"vin"}),
        ("kia", {"as24_uuid"}),
        ("M-AB 1234", {"plate"}),  # licence plate (vehicle.plate)
        ("A-XY 987", {"plate_extras"}),  # licence plate kept in the extras
        ("NIS-2026-000815", {"oem"}),  # the source's own lead number
        ("0170 5550199", {"phone"}),  # phone spellings
        ("01705550199", {"phone"}),
        ("+49 170 5550199", {"phone"}),
        ("+491705550199", {"phone"}),
        ("0049 170 5550199", {"phone"}),
        ("(0170) 555 01 99", {"phone"}),
        ("0170-555 0199", {"phone"}),
        ("0170/5550199", {"phone"}),
        ("5550199", {"phone"}),  # a part of the number
        ("999999999", set()),  # a 9-digit number nobody has
    ],
)
def test_numbers_and_vehicle_words_find_their_lead(
    team: sessionmaker[Session], app: Flask, leads: dict[str, int], query: str, expected: set[str]
) -> None:
    anna = logged_in(app, ANNA)
    assert ids_in(found(anna, query), leads) == expected, query


def test_the_lead_number_finds_the_lead_in_scope_only(
    team: sessionmaker[Session], app: Flask, leads: dict[str, int]
) -> None:
    anna = logged_in(app, ANNA)
    for query in (str(leads["stock"]), f"#{leads['stock']}"):
        assert "stock" in ids_in(found(anna, query), leads), query
    assert "carl" not in ids_in(found(anna, str(leads["carl"])), leads)  # not in her list
    carl = logged_in(app, CARL)
    assert ids_in(found(carl, "412345679"), leads) == {"carl"}
    assert ids_in(found(carl, "412345678"), leads) == set()  # Anna's listing


@pytest.mark.parametrize(
    "query",
    ["%", "_", "\\", "%_%", "1%", "12_45", "x" * 5000, "'; DELETE FROM lead; --", "0" * 50],
)
def test_hostile_numbers_and_wildcards_match_only_themselves(
    team: sessionmaker[Session], app: Flask, leads: dict[str, int], query: str
) -> None:
    anna = logged_in(app, ANNA)
    assert ids_in(found(anna, query), leads) == set(), query
    with team() as session:
        assert session.query(Lead).count() == len(leads)


def test_a_nul_in_the_search_is_refused_in_german(
    team: sessionmaker[Session], app: Flask, leads: dict[str, int]
) -> None:
    response = logged_in(app, ANNA).get("/leads", query_string={"q": "4123\x0045678"})
    assert response.status_code == 400 and "NUL-Zeichen" in response.get_data(as_text=True)


def test_search_alternatives_read_a_number_every_way() -> None:
    assert search_alternatives("412345678") == [("412345678", "49412345678")]
    assert search_alternatives("0170 1234567") == [("01701234567", "491701234567")]
    assert search_alternatives("+49 170 1234567") == [("491701234567",)]
    assert search_alternatives("123456") == [("123456",)]  # no phone number: as typed
    assert search_alternatives("Opel 412345678") == [("opel",), ("412345678", "49412345678")]
    assert search_alternatives("  ") == []
    assert lead_number("#42") == 42 and lead_number("42") == 42
    assert lead_number("0") is None and lead_number("99999999999999999999") is None
    assert lead_number("4 2") is None and lead_number("٤٢") is None  # Arabic-Indic digits
