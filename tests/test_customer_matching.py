"""Customer matching keys (pure) and the matching I/O against both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.distribution import matching
from mailgate.distribution.customers import match_customer
from mailgate.models import Customer, Lead
from mailgate.parsers.model import CustomerData

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("Hans Müller", None, None), ("Hans Mueller", None, None)),
        (("Müller, Hans", None, None), (None, "Hans", "Mueller")),
        (("Herr Dr. Jürgen Weiß", None, None), ("Juergen Weiss", None, None)),
        (("José Álvarez", None, None), ("Jose Alvarez", None, None)),
    ],
)
def test_name_keys_fold_umlauts_order_and_honorifics(a: tuple, b: tuple) -> None:
    assert matching.name_key(*a) == matching.name_key(*b) is not None


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0170 1234567", "+491701234567"),
        ("+49 (170) 123-45-67", "+491701234567"),
        ("0049 170 1234567", "+491701234567"),
        ("12", None),
        ("keine Angabe", None),
        (None, None),
    ],
)
def test_phone_numbers_to_e164(raw: str | None, e164: str | None) -> None:
    assert matching.normalise_phone(raw, "DE") == e164


def test_email_street_and_relay() -> None:
    assert matching.normalise_email(" <Max.M@Kunden.Example> ") == "max.m@kunden.example"
    assert matching.normalise_email("mailto:a@b.example") == "a@b.example"
    assert matching.normalise_email("kein mail") is None
    assert matching.street_key("Hauptstraße 5") == matching.street_key("Hauptstr. 5")
    assert matching.is_relay("abc123@anfrage.mobile.de")
    assert matching.is_relay("x@relay.portal.example", ["portal.example"])
    assert not matching.is_relay("x@kunden.example")


def test_fuzzy_only_suggests_similar_not_equal_names() -> None:
    key = matching.name_key("Erika Mustermann")
    assert key is not None
    found = matching.suggestions(
        key, [(1, "erika mustermann"), (2, "erika musterman"), (3, "otto")]
    )
    assert [cid for cid, _ in found] == [2]


def _match(session: Session, **fields: str) -> object:
    return match_customer(session, CustomerData(**fields), source="website", now=NOW)


def test_exact_keys_decide_and_fuzzy_only_suggests(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        first = _match(
            session,
            name="Jürgen Weiß",
            email="juergen@kunden.example",
            phone="0170 5550001",
            postcode="80331",
            street="Hauptstraße 5",
        )
        by_email = _match(session, name="J. Weiss", email="JUERGEN@kunden.example")
        by_phone = _match(session, name="Jürgen", phone="+49 170 5550001")
        by_name = _match(session, name="Juergen Weiss", postcode="80331")
        by_street = _match(session, name="Weiß, Jürgen", street="Hauptstr. 5")
        similar = _match(session, name="Jürgen Weis", postcode="80331")
    first_id = first.customer["id"]  # type: ignore[attr-defined]
    for result, how in [
        (by_email, "e-mail"),
        (by_phone, "phone"),
        (by_name, "name and address"),
        (by_street, "name and address"),
    ]:
        assert result.customer["id"] == first_id and result.how == how  # type: ignore[attr-defined]
    assert similar.customer["id"] != first_id  # type: ignore[attr-defined]
    assert similar.suggestions and similar.suggestions[0][0] == first_id  # type: ignore[attr-defined]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 2
        known = session.get(Customer, first_id)
        assert known is not None and known.phone_e164 == "+491701234567".replace(
            "1234567", "5550001"
        )


def test_relay_address_counts_only_for_its_open_conversation(
    factory: sessionmaker[Session],
) -> None:
    relay = "a1b2c3@anfrage.mobile.de"
    with session_scope(factory) as session:
        first = _match(session, name="Ida Relay", email=relay)
        again = match_customer(
            session, CustomerData(name="Ida Relay", email=relay), source="mobile.de", now=NOW
        )
    # no open lead of that conversation: the relay address does not identify a person
    assert again.customer["id"] != first.customer["id"]  # type: ignore[attr-defined]
    with session_scope(factory) as session:
        session.add(
            Lead(
                dedupe_key="k1",
                reply_token="t1",
                source="mobile.de",
                status="assigned",
                customer_id=again.customer["id"],
            )
        )
    with session_scope(factory) as session:
        third = match_customer(
            session, CustomerData(name="Ida Relay", email=relay), source="mobile.de", now=NOW
        )
    assert third.customer["id"] == again.customer["id"] and third.open_lead_id is not None
