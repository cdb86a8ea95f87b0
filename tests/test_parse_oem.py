"""OEM lead systems: recognised by several signals, never by the sender domain alone."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate.parsers import (
    ParsedLead,
    oem_hyundai,
    oem_mercedes_benz,
    oem_nissan,
    oem_opel,
    oem_volkswagen,
    parse_raw,
)
from mailgate.parsers.message import load
from mailgate.parsers.oem_common import (
    kind_from,
    sectioned_fields,
    split_phones,
    vehicle_from,
)
from mailgate.parsers.registry import pick

LEADIT_BODY = (
    "Lead-ID: 2718281\nKampagne: 812 - Angebotsanfrage opel.de\nHändler: DE1234.00\n"
    "Bitte kontaktieren Sie den Interessenten innerhalb von 24 Stunden.\n\n"
    "Interessent\nVorname: Eva\nNachname: Kurz\nE-Mail: eva.kurz@kunde.example\n"
)


def _view(sender: str, subject: str, body: str):
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "leads@autohaus-beispiel.example"
    mail["Subject"] = subject
    mail.set_content(body)
    return load(mail.as_bytes())


def test_leadit_with_brand_sender_matches() -> None:
    view = _view("Opel LeadIT <noreply@leads.example>", "Neuer Lead", LEADIT_BODY)
    assert oem_opel.matches(view)
    assert pick(view) is oem_opel


def test_exact_brand_domain_alone_is_not_enough() -> None:
    view = _view("noreply@opel.de", "Ihre Anfrage", "Hallo, Ihr Termin ist bestätigt.")
    assert not oem_opel.matches(view)


def test_dealer_form_with_brand_in_its_name_is_not_an_oem_lead() -> None:
    body = "Serviceanfrage\nKennzeichen: M-AB 123\nName: Udo Sturm\nTelefon: 089 123456\n"
    view = _view("Autohaus Beispiel - Ihr Hyundai Partner <web@haendler.example>", "Termin", body)
    assert not oem_hyundai.matches(view)


def test_brand_only_in_vehicle_text_is_not_enough() -> None:
    body = LEADIT_BODY.replace("Opel", "")
    view = _view("Webformular <wordpress@autohaus-beispiel.example>", "Kontaktanfrage", body)
    assert not oem_opel.matches(view)


def test_brand_in_subject_needs_one_signal_more() -> None:
    thin = "Lead-ID: 4711\nBitte melden Sie sich innerhalb von 24 Stunden.\nName: A B\n"
    sender = "Web <web@haendler.example>"
    assert not oem_opel.matches(_view(sender, "Anfrage Opel Corsa", thin))
    assert oem_opel.matches(_view(sender, "Anfrage Opel Corsa", thin + "Kampagne: 1\n"))
    assert oem_opel.matches(_view("Opel Leads <x@haendler.example>", "Anfrage", thin))


def test_marketplace_sender_is_never_an_oem_lead() -> None:
    view = _view("Opel über mobile.de <noreply@mobile.de>", "Opel LeadIT", LEADIT_BODY)
    assert not oem_opel.matches(view)


def test_look_alike_domain_label_gives_one_signal_only() -> None:
    view = _view("noreply@opel.de.evil.example", "Hallo", "Nur Text ohne Struktur.")
    assert not oem_opel.matches(view)


@pytest.mark.parametrize(
    ("sender", "subject", "body", "slug"),
    [
        (
            "Audi Konfigurator <a@lead.example>",
            "Anfrage",
            "Vorgangsnummer: 1\nAudi Code: AB12\nUVP: 1\n",
            "audi",
        ),
        (
            "Konfigurator <a@lead.example>",
            "VW Konfiguration",
            "VW Code: X1\nUVP: 1\nAnfrage-Nr.: 7\n",
            "volkswagen",
        ),
        (
            "Volkswagen Konfigurator <a@lead.example>",
            "Anfrage",
            "Anfrage-Nr.: 2\nVW Code: X1\nUVP: 1\nInzahlungnahme\nMarke: Audi\n",
            "volkswagen",
        ),
    ],
)
def test_vw_group_brand_comes_from_the_system_not_the_cars(
    sender: str, subject: str, body: str, slug: str
) -> None:
    view = _view(sender, subject, body)
    assert oem_volkswagen.matches(view)
    assert oem_volkswagen.parse(view).source == f"oem:{slug}"


def test_mercedes_template_sections() -> None:
    body = (
        "Rückmeldung innerhalb von 24 Stunden zugesagt.\n"
        "Persönliche Angaben des Interessenten\nName: Jo Lenz\nTelefon / Mobil: 0711 1234567\n"
        "Anfragen und Informationen des Interessenten\nFahrzeug: Mercedes EQA 250\n"
        "Nachricht: Der Kunde hat keine Nachricht eingegeben.\n"
    )
    view = _view("Mercedes-Benz Leads <l@x.example>", "Neue Anfrage", body)
    assert oem_mercedes_benz.matches(view)
    lead = oem_mercedes_benz.parse(view)
    assert lead.message is None
    assert (lead.vehicle.make, lead.vehicle.model) == ("Mercedes", "EQA 250")
    assert lead.vehicle.listing_id is None


def test_single_test_signal_only_warns() -> None:
    body = (
        "Lead-Nummer: 1\nAnfrageart: Probefahrt\nKundendaten\nVorname: Test\nNachname: Meyer\n"
        "E-Mail: t.meyer@kunde.example\n"
    )
    view = _view("Nissan Lead Management <l@x.example>", "Probefahrt", body)
    lead = oem_nissan.parse(view)
    assert lead.is_lead and lead.non_lead_reason is None
    assert any("test lead" in w for w in lead.warnings)


def test_sections_keep_trade_in_apart_and_rates_out_of_price() -> None:
    fields = sectioned_fields(
        "Fahrzeug\nModell: Opel Astra\nUVP: 30.000 EUR\n"
        "Leasing\nMonatliche Rate: 299 EUR\nAnzahlung: 3.000 EUR\n"
        "Inzahlungnahme\nModell: VW Golf\nKennzeichen: B-XY 123\nKilometerstand: 120.000 km\n"
    )
    wanted = vehicle_from(fields, ("vehicle", "request", "top"), "Opel")
    traded = vehicle_from(fields, ("trade_in",), None)
    assert (wanted.make, wanted.model, wanted.price) == ("Opel", "Astra", 30000.0)
    assert (traded.make, traded.model, traded.mileage) == ("VW", "Golf", 120000)
    assert traded.listing_id is None and wanted.listing_id is None


def test_message_block_stops_at_footer_and_next_label() -> None:
    fields = sectioned_fields(
        "Nachricht:\nZeile eins\nZeile zwei\n\nDies ist eine automatisch erzeugte E-Mail.\n"
    )
    assert fields.get("message", ("message",)) == "Zeile eins\nZeile zwei"
    fields = sectioned_fields(
        "Nachricht:\nBitte kontaktieren Sie mich bis spätestens Freitag.\n"
        "Bitte melden Sie sich per E-Mail.\n"
        "Bitte kontaktieren Sie den Interessenten innerhalb von 24 Stunden.\n"
    )
    assert fields.get("message", ("message",)) == (
        "Bitte kontaktieren Sie mich bis spätestens Freitag.\nBitte melden Sie sich per E-Mail."
    )
    fields = sectioned_fields("Nachricht: kurz\nE-Mail: a@b.example\n")
    assert fields.get("message", ("message",)) == "kurz"
    assert fields.get("email", ("top",)) == "a@b.example"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0711 123456 / 0171 2345678", "0711 123456"),
        ("0711 / 123456", "0711 / 123456"),
        ("+49 172 5544332", "+49 172 5544332"),
        ("keine", None),
        (None, None),
    ],
)
def test_split_phones(value: str | None, expected: str | None) -> None:
    assert split_phones(value) == expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Angebot mit Inzahlungnahme", "inquiry"),
        ("Ankaufanfrage", "trade_in"),
        ("Leasingangebot", "financing"),
        ("Servicetermin", "service"),
        ("Probefahrt", "test_drive"),
        ("", None),
    ],
)
def test_kind_from_takes_the_earliest_word(text: str, kind: str | None) -> None:
    assert kind_from(text) == kind


@pytest.mark.parametrize(
    ("fixture", "campaign"),
    [
        ("oem_opel/leadit-angebot-utf8-qp.eml", "812 - Angebotsanfrage opel.de"),
        ("oem_opel/leadit-probefahrt-cp1252-8bit-crlf.eml", "815 - Probefahrt opel.de"),
        ("oem_hyundai/service-inspektion-plate-qp.eml", "Servicetermin"),  # the lead type
        ("oem_mercedes_benz/html-alternative-cp1252-title.eml", None),  # names none
    ],
)
def test_the_campaign_or_lead_type_the_oem_names_is_kept(
    fixture: str, campaign: str | None
) -> None:
    from pathlib import Path

    from mailgate.parsers import ParseContext, parse_view

    raw = (Path(__file__).parent / "fixtures" / "mails" / fixture).read_bytes()
    assert parse_view(load(raw), ParseContext()).campaign == campaign


# --- labels the OEM parsers do not know: the layers complete what they read ---------------

_OEM_FIXTURES = Path(__file__).parent / "fixtures" / "mails"


def _relabelled(fixture: str, *pairs: tuple[bytes, bytes]) -> tuple[ParsedLead, ParsedLead]:
    raw = (_OEM_FIXTURES / fixture).read_bytes()
    changed = raw
    for old, new in pairs:
        assert old in changed, old
        changed = changed.replace(old, new, 1)
    return parse_raw(raw), parse_raw(changed)


def test_a_trim_line_in_another_wording_completes_the_model() -> None:
    """The OEM parser joins "Modell" and "Ausstattung"; "Trim level" / "Finition" must too."""
    for label in (b"Trim level: ", b"Finition : ", b"Uitvoering\t"):
        plain, relabelled = _relabelled(
            "oem_volkswagen/audi-code-leasing-rate-not-price.eml", (b"Ausstattung: ", label)
        )
        assert plain.vehicle.model == "A4 Avant S line 40 TDI quattro"
        assert relabelled.vehicle.model == plain.vehicle.model, label


def test_an_equipment_list_is_no_trim() -> None:
    """A marketplace's "Ausstattung: Navi, Sitzheizung" lists features, not a trim."""
    plain, listed = _relabelled(
        "oem_volkswagen/audi-code-leasing-rate-not-price.eml",
        (b"Ausstattung: S line 40 TDI quattro", b"Trim level: Navi, Sitzheizung, AHK"),
    )
    assert listed.vehicle.model == "A4 Avant"


def test_a_first_or_last_name_in_another_wording_completes_the_name() -> None:
    for old, new in (
        (b"Vorname: Bj", b"Nome di battesimo:\r\nBj"),
        (b"Nachname: ", b"Family name\t"),
    ):
        plain, relabelled = _relabelled("oem_nissan/probefahrt-latin1-qp.eml", (old, new))
        assert (plain.customer.first_name, plain.customer.last_name) == ("Björn", "Løvås")
        assert relabelled.customer.first_name == "Björn", new
        assert relabelled.customer.last_name == "Løvås", new
        assert relabelled.customer.name == "Björn Løvås"


def test_an_oem_test_lead_stays_suppressed_whatever_its_labels() -> None:
    plain, relabelled = _relabelled(
        "oem_nissan/test-lead-suppressed.eml",
        (b"Vorname: Test", b"Nome di battesimo:\tTest"),
        (b"Nachname: Test", b"Achternaam:\tTest"),
    )
    assert not plain.is_lead
    assert not relabelled.is_lead
    assert relabelled.non_lead_reason == "test lead: test name and test e-mail address"


def test_a_landline_and_a_mobile_in_one_field_give_the_first_number() -> None:
    """'Telefon-Nr.: 0431 123456 / 0171 2233445' under a label the parser does not list:
    the general reader takes the first number, as the parser does under its own label."""
    plain, relabelled = _relabelled(
        "oem_mercedes_benz/angebot-keine-nachricht-8bit.eml",
        (b"Telefon / Mobil: ", b"Telefon-Nr.:\t"),
    )
    assert plain.customer.phone_e164 == "+49431123456"
    assert relabelled.customer.phone_e164 == plain.customer.phone_e164


def test_a_model_line_naming_the_make_gives_make_and_model() -> None:
    """'Model: Opel Frontera' under a label the parser does not list: make and model split."""
    plain, relabelled = _relabelled(
        "oem_opel/leadit-forwarded-outlook-trade-in.eml",
        (b"Modell: Opel Frontera", b"Model: Opel Frontera"),
    )
    assert (plain.vehicle.make, plain.vehicle.model) == ("Opel", "Frontera")
    assert (relabelled.vehicle.make, relabelled.vehicle.model) == ("Opel", "Frontera")


def test_a_model_line_without_a_make_keeps_its_first_word() -> None:
    """'Model: IONIQ 5 N': the catalogue knows IONIQ as a Hyundai model, not a make to cut."""
    plain, relabelled = _relabelled(
        "oem_hyundai/probefahrt-ioniq-cp1252-qp.eml", (b"Modell: IONIQ 5 N", b"Model: IONIQ 5 N")
    )
    assert plain.vehicle.model == "IONIQ 5 N"
    assert relabelled.vehicle.model == plain.vehicle.model
