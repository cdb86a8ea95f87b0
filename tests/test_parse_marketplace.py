"""Pure helpers behind the marketplace parsers, and the spoof-aware authentication check."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.parsers import ParseContext, autoscout24, kleinanzeigen, mobile_de, parse_raw
from mailgate.parsers.marketplace import (
    choose_email,
    cut_quoted,
    section,
    split_vehicle,
    strip_banner,
    subject_core,
    trim_title,
)
from mailgate.parsers.message import load
from mailgate.parsers.signals import authentication_failed

FIXTURES = Path(__file__).parent / "fixtures" / "mails"
TRUSTED = frozenset({"mx.autohaus-beispiel.example"})


def _mail(from_: str, body: str = "Hallo", extra: str = "", reply_to: str = "") -> bytes:
    head = f"From: {from_}\r\nTo: leads@autohaus-beispiel.example\r\nSubject: Anfrage\r\n"
    if reply_to:
        head += f"Reply-To: {reply_to}\r\n"
    return (extra + head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


@pytest.mark.parametrize(
    ("sender", "module"),
    [
        ("noreply@mobile.de", mobile_de),
        ("buyer-abc123@kontakt.mobile.de", mobile_de),
        ("a-xyz@mail.mobile.de", mobile_de),
        ("interessent-1@mail.ebay-kleinanzeigen.de", kleinanzeigen),
        ("interessent-1@mail.kleinanzeigen.de", kleinanzeigen),
        ("noreply@autoscout24.com", autoscout24),
        ("noreply@mail.autoscout24.be", autoscout24),
        ("noreply@e.autoscout24.nl", autoscout24),
    ],
)
def test_platform_senders_match_their_parser(sender: str, module: object) -> None:
    view = load(_mail(sender))
    assert [m for m in (mobile_de, kleinanzeigen, autoscout24) if m.matches(view)] == [module]


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@mobile.de.evil.example",
        "noreply@notmobile.de",
        "noreply@notautoscout24.be",
        "noreply@autoscout24.evil.example",
        "autoscout24@freemail.example",
        "interessent-1@mail.kleinanzeigen.de.phish.example",
        "kunde@kunde.example",
    ],
)
def test_look_alike_senders_match_no_platform(sender: str) -> None:
    view = load(_mail(sender, reply_to="noreply@mobile.de"))
    assert not any(m.matches(view) for m in (mobile_de, kleinanzeigen, autoscout24))


def test_mobile_listing_id_ignores_lead_numbers_phones_and_stock_numbers() -> None:
    text = (
        "Anfrage-Nr.: 100234567\nInterne Nr.: 123456789\nTelefon: 0151 234567890\n"
        "https://suchen.mobile.de/fahrzeuge/details.html?lang=de&id=412345678\n"
    )
    assert mobile_de.listing_id(text, None) == "412345678"
    assert mobile_de.listing_id("Inseratsnummer: 381 234 567", None) == "381234567"
    assert mobile_de.listing_id("Anfrage-Nr.: 100234567", None) is None


def test_autoscout_listing_id_is_the_offer_uuid_never_the_plate() -> None:
    uuid = "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b"
    text = f"Kenteken: XK-123-B\nhttps://www.autoscout24.nl/aanbod/vw-polo-wit-{uuid.upper()}?x=1"
    assert autoscout24.listing_id(text, None) == uuid
    assert autoscout24.listing_id("Kenteken: XK-123-B", None) is None
    assert autoscout24.listing_id("Advertentienr.: 41-998877 (intern)", None) == "41-998877"


def test_a_text_part_made_from_html_keeps_its_link_targets() -> None:
    """HTML-to-text mailers write links as [text](url): the ad id and the reply address
    in a link target count as they do in the HTML (a mutation of every HTML fixture)."""
    uuid = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
    autoscout = (
        "Nouvelle demande de Mme Aline Vercauteren pour Skoda Octavia Combi 2.0 TDI\n\n"
        "Nom: Mme Aline Vercauteren\n\nMessage de l'acheteur\n\n"
        "Bonjour, la voiture est-elle encore disponible ?\n\n"
        "Répondre à : [Aline Vercauteren](mailto:aline.vercauteren@client.example)\n\n"
        f"[Voir l'annonce](https://www.autoscout24.be/fr/offres/skoda-octavia-gris-{uuid})\n"
    )
    lead = parse_raw(_mail("AutoScout24 <noreply@autoscout24.be>", autoscout))
    assert lead.parser == "autoscout24"
    assert lead.customer.email == "aline.vercauteren@client.example"
    assert lead.vehicle.listing_id == uuid
    mobile = (
        "Hallo Autohaus Beispiel,\n\nJonas Brettschneider hat eine Frage zu deinem Inserat:\n\n"
        "[Cupra Born 58 kWh e-Boost](https://suchen.mobile.de/fahrzeuge/details.html?id=398877665)"
        "\n31.900 €\n\nNachricht\n\nIst der Born unfallfrei?\n"
    )
    lead = parse_raw(_mail("Jonas Brettschneider <buyer-zz81@kontakt.mobile.de>", mobile))
    assert lead.parser == "mobile_de"
    assert lead.vehicle.listing_id == "398877665"
    assert (lead.vehicle.make, lead.vehicle.model) == ("Cupra", "Born 58 kWh e-Boost")
    assert "](" not in (lead.message or "")


def test_a_field_below_the_message_in_another_wording_is_not_part_of_it() -> None:
    """The parser stops its message at "Prijs:"; "Kaufpreis:" (a lexicon synonym) must stop
    it too, while a field line followed by more of the customer's words stays whole."""
    fixture = FIXTURES / "autoscout24" / "nl-inruil-trade-in.eml"
    raw = fixture.read_bytes()
    assert b"Prijs: \xe2\x82\xac 24.495" in raw
    plain = parse_raw(raw)
    relabelled = parse_raw(raw.replace(b"Prijs: ", b"Kaufpreis: ", 1))
    assert relabelled.message == plain.message
    assert "Kaufpreis" not in (relabelled.message or "")
    assert relabelled.vehicle.price == plain.vehicle.price == 24495
    inside = parse_raw(
        raw.replace(b"Prijs: ", b"Kaufpreis: \xe2\x82\xac 23.000\nOf is er korting?\n", 1)
    )
    assert "Of is er korting?" in (inside.message or "")


def test_a_trailing_field_block_with_unlisted_labels_is_cut_from_the_message() -> None:
    """'Vehicle price : …' (a lexicon label the parser does not list) starts the block; the
    'Monatliche Rate ab: …' line below it no lexicon lists is part of the block too."""
    fixture = FIXTURES / "autoscout24" / "de-sie-alternative-uuid.eml"
    raw = fixture.read_bytes()
    plain = parse_raw(raw)
    relabelled = parse_raw(
        raw.replace(b"Preis: =E2=82=AC 38.450,-", b"Vehicle price : =E2=82=AC 38.450,-", 1)
    )
    assert relabelled.message == plain.message
    assert "Rate" not in (relabelled.message or "")


def test_a_labelled_name_spells_out_the_senders_initial() -> None:
    """mobile.de's sender line says 'A. Schulze-Brandt'; under a name label the parser does
    not list ('Your name:') the labelled 'Anna-Lena Schulze-Brandt' still wins."""
    raw = (FIXTURES / "mobile_de" / "listing-id-vs-other-numbers.eml").read_bytes()
    plain = parse_raw(raw)
    relabelled = parse_raw(raw.replace(b"Name: Frau", b"Your name:\tFrau", 1))
    for lead in (plain, relabelled):
        assert (lead.customer.first_name, lead.customer.last_name) == (
            "Anna-Lena",
            "Schulze-Brandt",
        )


def test_a_stock_number_in_a_relabelled_offer_line_is_still_read() -> None:
    """'(Nr. Y-3305)' in the title: under 'Anzeige:' (a label the parser does not list) too."""
    raw = (FIXTURES / "unseen" / "mobile_de" / "stock-in-parentheses-absender.eml").read_bytes()
    plain = parse_raw(raw)
    relabelled = parse_raw(raw.replace(b"Ihr Inserat: ", b"Anzeige:\t", 1))
    assert plain.vehicle.stock_number == relabelled.vehicle.stock_number == "Y-3305"


def test_vehicle_titles_split_into_make_and_model() -> None:
    assert split_vehicle("Land Rover Defender 110") == ("Land Rover", "Defender 110")
    assert split_vehicle("VW Golf 8 GTI") == ("VW", "Golf 8 GTI")
    assert split_vehicle("Golf Variant") == (None, "Golf Variant")
    assert split_vehicle("") == (None, None)
    assert trim_title("Volkswagen Polo 1.0 TSI €14.950") == "Volkswagen Polo 1.0 TSI"
    assert trim_title("BMW 320d, 24.890 €") == "BMW 320d"
    assert (
        subject_core("[EXTERN] AW: WG: Anfrage zu Ihrem Inserat: X")
        == "Anfrage zu Ihrem Inserat: X"
    )


def test_markers_count_only_at_line_starts() -> None:
    text = "Nachricht:\nIst eine Inzahlungnahme möglich?\nGruß\n\nInzahlungnahme\nMarke: VW\n"
    body = section(text, ("Nachricht:",), ("Inzahlungnahme",))
    assert "Ist eine Inzahlungnahme möglich?" in body
    assert "Marke" not in body
    assert section("Prix : 27.900 €", ("x",), ("Prix:",)) == ""
    assert section("Bericht\nPrix\u00a0: 27.900 €", ("Bericht",), ("Prix:",)).strip() == ""


@pytest.mark.parametrize(
    "quote_header",
    [
        "Am 7. Juni 2026 um 09:39 schrieb <seller-abc@kontakt.mobile.de>:",
        "Op 12 nov. 2026 om 10:00 schreef Autobedrijf Voorbeeld <verkoop@voorbeeld.example>:",
        "Le 12 nov. 2026 à 10:00, Garage Exemple a écrit :",
        "-----Ursprüngliche Nachricht-----",
        "Gesendet: Donnerstag, 01. Juni 2026 um 13:56 Uhr",
        "> zitierter Text",
    ],
)
def test_quoted_thread_is_cut(quote_header: str) -> None:
    assert cut_quoted(f"Neue Antwort\n\n{quote_header}\nAlter Text") == "Neue Antwort"


def test_gateway_banner_paragraph_is_dropped() -> None:
    text = "CAUTION: This email originated from outside of the organization.\n\nHallo Autohaus"
    assert strip_banner(text) == "Hallo Autohaus"
    assert strip_banner("Hallo Autohaus\n\nGruß") == "Hallo Autohaus\n\nGruß"


def test_customer_email_never_the_dealer_the_platform_or_the_seller_side() -> None:
    ctx = ParseContext(dealer_addresses=frozenset({"leads@autohaus-beispiel.example"}))
    domains, relays = ("mobile.de",), ("kontakt.mobile.de",)
    seller = load(_mail("seller-k2j4@kontakt.mobile.de", reply_to="support@mobile.de"))
    assert choose_email(None, seller, ctx, domains, relays, ("seller-",)) is None
    buyer = load(_mail("buyer-7f3k@kontakt.mobile.de", reply_to="noreply@mobile.de"))
    assert choose_email(None, buyer, ctx, domains, relays) == "buyer-7f3k@kontakt.mobile.de"
    dealer = load(_mail("noreply@mobile.de", reply_to="leads@autohaus-beispiel.example"))
    assert (
        choose_email("kunde@kunde.example", dealer, ctx, domains, relays) == "kunde@kunde.example"
    )
    assert choose_email(None, dealer, ctx, domains, relays) is None


def _auth(*headers: str, sender: str = "noreply@mobile.de") -> str | None:
    extra = "".join(f"Authentication-Results: {h}\r\n" for h in headers)
    return authentication_failed(load(_mail(sender, extra=extra)), TRUSTED)


def test_only_the_topmost_trusted_authentication_result_counts() -> None:
    fail = "mx.autohaus-beispiel.example; dkim=fail header.d=mobile.de"
    forged_pass = "mx.autohaus-beispiel.example; dkim=pass header.d=mobile.de"
    assert _auth(fail, forged_pass) == "dkim=fail"
    assert _auth(forged_pass, fail) is None
    assert _auth("mx.evil.example; dkim=fail", forged_pass) is None
    assert _auth("MX.Autohaus-Beispiel.example 1; dmarc=fail header.from=mobile.de") == "dmarc=fail"
    assert authentication_failed(load(_mail("noreply@mobile.de", extra="")), TRUSTED) is None


def test_an_unaligned_dkim_pass_does_not_excuse_a_failure() -> None:
    own = (
        "mx.autohaus-beispiel.example; dkim=fail header.d=mobile.de; "
        "dkim=pass header.d=evil.example"
    )
    assert _auth(own) == "dkim=fail"
    aligned = (
        "mx.autohaus-beispiel.example; dkim=fail header.d=esp.example; "
        "dkim=pass header.i=@kontakt.mobile.de"
    )
    assert _auth(aligned, sender="buyer-1@kontakt.mobile.de") is None


@pytest.mark.parametrize(
    "sender",
    ["noreply@mobile.de", "interessent-1@mail.kleinanzeigen.de", "noreply@autoscout24.nl"],
)
@pytest.mark.parametrize(
    "body",
    [
        "",
        "Nachricht:",
        "Nachricht von:",
        "Bericht van de koper",
        "Inruilaanvraag\nMerk:",
        "Nieuwe aanvraag van  voor ",
        "\x00\xff" * 50,
        "Preis: € €\nInseratsnummer: x\nAnzeigennummer:\n",
    ],
)
def test_degenerate_platform_mails_never_raise(sender: str, body: str) -> None:
    lead = parse_raw(_mail(sender, body))
    assert lead.parser in {"mobile_de", "kleinanzeigen", "autoscout24"}
    assert lead.is_lead == lead.customer.has_contact()
    if lead.parser != "kleinanzeigen":  # only the relay sender is a usable contact here
        assert lead.is_lead is False


def test_a_buyer_mentioning_a_notice_phrase_is_still_a_lead() -> None:
    body = (
        "Nieuwe aanvraag van Joris Smit voor Fiat 500\r\n"
        "E-mail: joris@klant.example\r\n\r\nBericht van de koper\r\n"
        "Gesprek gevoerd met uw verkoper, graag een offerte.\r\n"
        "Bekijk advertentie: https://www.autoscout24.nl/offers/fiat-500-"
        "0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d\r\n"
    )
    lead = parse_raw(_mail("noreply@autoscout24.nl", body))
    assert (lead.parser, lead.is_lead, lead.non_lead_reason) == ("autoscout24", True, None)
    assert lead.customer.email == "joris@klant.example"
    assert lead.vehicle.listing_id == "0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d"
    assert lead.message == "Gesprek gevoerd met uw verkoper, graag een offerte."
