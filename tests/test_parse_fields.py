"""Labelled fields and the customer's e-mail address (FORMATS.md 1.1)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from mailgate.parsers import ParseContext, parse_raw
from mailgate.parsers.fields import (
    choose_customer_email,
    dealer_domains,
    is_dealer_address,
    labelled_fields,
)
from mailgate.parsers.message import load

DEALERS = frozenset({"leads@autohaus-beispiel.example"})


def _view(headers: dict[str, str], body: str = "Hallo\n"):
    msg = EmailMessage()
    for key, value in headers.items():
        msg[key] = value
    msg.set_content(body)
    return load(msg.as_bytes())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Name : Jean Dupont\nCourriel : jean@client.example", {"name": "Jean Dupont"}),
        ("Ihr Name*: Max Muster", {"name": "Max Muster"}),
        ("Naam\n\nDaan Jansen\n\nE-mailadres\n\ndaan@klant.example", {"name": "Daan Jansen"}),
        ("E-Mail\nkein Eintrag\nTelefon: 0171 1234567", {"phone": "0171 1234567"}),
        ("Inserat-Nr.:\nAnzahlung: 5.000 €", {"down_payment": "5.000 €"}),
        ("Telefon (optional): 030 1234567", {"phone": "030 1234567"}),
    ],
)
def test_labelled_fields_variants(text: str, expected: dict[str, str]) -> None:
    found = labelled_fields(text)
    for key, value in expected.items():
        assert found.get(key) == value
    assert "listing_id" not in found and ("email" not in found or "@" in found["email"])


def test_message_runs_until_the_next_label() -> None:
    found = labelled_fields("Nachricht: Zeile eins\nZeile zwei\n\nAbsatz\nDatenschutz: ja\n")
    assert found["message"] == "Zeile eins\nZeile zwei\n\nAbsatz"
    assert found["consent"] == "ja"


def test_message_stops_only_at_a_label_line() -> None:
    """A bare label ends the message only as a short line; a colon alone is no label."""
    text = (
        "Nachricht: Ich hätte gern ein Angebot\n"
        "Uhrzeit: egal, am liebsten vormittags\n"  # a colon, but no known label
        + "Telefon "
        * 6
        + "\n"  # a long line that starts like a bare label
        "  * Telefon  \n"  # a bare label: the message ends here
        "030 1234567\n"
    )
    found = labelled_fields(text)
    assert found["message"] == (
        "Ich hätte gern ein Angebot\nUhrzeit: egal, am liebsten vormittags\n"
        + ("Telefon " * 6).rstrip()
    )
    assert found["phone"] == "030 1234567"


def test_labelled_email_beats_reply_to_and_from() -> None:
    view = _view({"From": "p@kunde.example", "Reply-To": "r@kunde.example"})
    assert choose_customer_email("l@kunde.example", view, DEALERS) == "l@kunde.example"


def test_non_system_reply_to_beats_from() -> None:
    view = _view({"From": "x@kunde.example", "Reply-To": "Kunde <r@kunde.example>"})
    assert choose_customer_email(None, view, DEALERS) == "r@kunde.example"


def test_system_reply_to_and_dealer_domain_are_skipped() -> None:
    view = _view(
        {"From": "verkauf@autohaus-beispiel.example", "Reply-To": "noreply@portal.example"}
    )
    assert choose_customer_email(None, view, DEALERS) is None


def test_relay_from_counts_even_when_from_is_not_the_customer() -> None:
    view = _view({"From": "Max <buyer-1a2b3c@kontakt.mobile.de>"})
    assert choose_customer_email(None, view, DEALERS, from_is_customer=False) == (
        "buyer-1a2b3c@kontakt.mobile.de"
    )
    view = _view({"From": "Max <max@kunde.example>"})
    assert choose_customer_email(None, view, DEALERS, from_is_customer=False) is None
    assert choose_customer_email(None, view, DEALERS) == "max@kunde.example"


def test_web_server_senders_are_system_addresses() -> None:
    for sender in ("wordpress@autohaus.example", "www-data@web1.example", "no_reply@x.example"):
        assert choose_customer_email(None, _view({"From": sender}), frozenset()) is None


def test_dealer_domain_ignores_mailbox_providers() -> None:
    dealers = frozenset({"autohaus.muster@gmail.com", "leads@autohaus-beispiel.example"})
    assert dealer_domains(dealers) == frozenset({"autohaus-beispiel.example"})
    assert not is_dealer_address("kunde@gmail.com", dealers)
    assert is_dealer_address("eva@autohaus-beispiel.example", dealers)
    assert is_dealer_address("autohaus.muster@gmail.com", dealers)


def test_unknown_labelled_format_yields_name_email_phone_message() -> None:
    """Issue 3: a labelled mail from a source nobody wrote a parser for."""
    body = (
        "Sie haben eine neue Nachricht.\n\nKontaktperson: Ida Sommer\n"
        "E-Mail-Adresse: ida.sommer@kunde.example\nRufnummer: 0341 556677\n"
        "Kommentar: Ich hätte gern einen Rückruf.\n"
    )
    raw = _view({"From": "bot@irgendein-portal.example", "Subject": "Neue Nachricht"}, body)
    lead = parse_raw(raw.message.as_bytes(), ctx=ParseContext(dealer_addresses=DEALERS))
    assert lead.parser == "generic" and lead.is_lead
    assert lead.customer.name == "Ida Sommer"
    assert lead.customer.email == "ida.sommer@kunde.example"
    assert lead.customer.phone == "0341 556677" and lead.customer.phone_e164 == "+49341556677"
    assert lead.message == "Ich hätte gern einen Rückruf."


def test_an_empty_field_never_takes_the_next_field_line_as_its_value() -> None:
    """'Inserat-Nr.:' left empty by the form; the next line is another field in any layout."""
    for layout in ("Anzahlung: 5.000 €", "ANZAHLUNG\t5.000 €", "Anzahlung => 5.000 €"):
        found = labelled_fields(f"Fahrzeug: Hyundai Tucson\nInserat-Nr.:\n{layout}\n")
        assert "listing_id" not in found, layout


def test_a_tab_separated_label_ends_the_message() -> None:
    found = labelled_fields(
        "Nachricht: Bitte ein Angebot über 48 Monate.\nDATENSCHUTZ\takzeptiert\n"
    )
    assert found["message"] == "Bitte ein Angebot über 48 Monate."


@pytest.mark.parametrize(
    ("text", "price"),
    [
        ("Is it still for sale at 39,900 EUR? I can pick it up.", 39900.0),
        ("Listed at EUR 12,500.50 on your site.", 12500.5),
        ("Ist der Wagen für 19.850 € noch da?", 19850.0),
        ("Preis: 24.495,- EUR", 24495.0),
    ],
)
def test_a_price_in_prose_is_read_whole_in_either_thousands_style(text: str, price: float) -> None:
    """English thousands ("39,900 EUR") are one amount, never the "900 EUR" at its end."""
    from mailgate.parsers import scanners
    from mailgate.parsers.normalize import parse_price

    hits = scanners.prices(text)
    assert hits and parse_price(hits[0].value) == price
