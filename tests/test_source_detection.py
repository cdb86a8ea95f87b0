"""Source detection by evidence (issue 19 item 4): registrable domains, look-alikes, form shape.

The fixtures grade whole mails; these tests pin the rules themselves, each
with the near miss it must not confuse: a platform's subdomain against a
domain that merely contains the platform's name, the dealer's own site against
an employee writing from the same domain, a customer's word "Rechnung" against
a supplier's invoice.
"""

from __future__ import annotations

import time
from email.message import EmailMessage

import pytest

from mailgate.parsers import ParseContext, parse_raw
from mailgate.parsers.message import load
from mailgate.parsers.registry import pick
from mailgate.parsers.signals import (
    authenticated_platform,
    authentication_failed,
    imitated_platform,
    lookalike_reason,
    platform_of,
    registrable_domain,
    same_organisation,
)

DEALER = ParseContext(
    dealer_addresses=frozenset({"leads@autohaus-beispiel.example"}),
    trusted_authserv_ids=frozenset({"mx.autohaus-beispiel.example"}),
)


def _mail(
    body: str,
    *,
    sender: str = "Kunde <kunde@mail.example>",
    subject: str = "Anfrage",
    to: str = "leads@autohaus-beispiel.example",
    headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return bytes(msg)


LEAD_BODY = (
    "Fahrzeug: BMW 320d Touring\nInseratsnummer: 401234567\nName: Kurt Eiler\n"
    "E-Mail: kurt.eiler@kunde.example\nTelefon: 0171 2233445\n\nNachricht:\nNoch da?\n"
)


@pytest.mark.parametrize(
    ("domain", "registrable"),
    [
        ("kontakt.mobile.de", "mobile.de"),
        ("mobile.de", "mobile.de"),
        ("mobile.de.evil.example", "evil.example"),
        ("foo.bar.co.uk", "bar.co.uk"),
        ("web01.autohaus-beispiel.example", "autohaus-beispiel.example"),
        ("MAIL.AutoScout24.COM.", "autoscout24.com"),
        ("de", "de"),
    ],
)
def test_registrable_domain_uses_the_public_suffix_list(domain: str, registrable: str) -> None:
    assert registrable_domain(domain) == registrable


def test_relaxed_alignment_is_the_organisational_domain() -> None:
    assert same_organisation("mail.mobile.de", "kontakt.mobile.de")
    assert not same_organisation("mobile.de", "mobile.de.evil.example")
    assert not same_organisation("a.co.uk", "b.co.uk")  # co.uk is a public suffix


@pytest.mark.parametrize(
    ("address", "platform"),
    [
        ("buyer-abc@kontakt.mobile.de", "mobile.de"),
        ("interessent-1@mail.ebay-kleinanzeigen.de", "kleinanzeigen"),
        ("noreply@autoscout24.be", "autoscout24"),
        ("x@mobile.de.evil.example", None),
        ("x@notautoscout24.be", None),
    ],
)
def test_platform_of_is_a_registrable_domain_match(address: str, platform: str | None) -> None:
    assert platform_of(address) == platform


@pytest.mark.parametrize(
    ("address", "imitated"),
    [
        ("service@mobile-de.support-center.example", "mobile.de"),
        ("noreply@mobile.de.kontakt-center.example", "mobile.de"),
        ("pay@autoscout24-payments.example", "autoscout24"),
        ("x@autosc0ut24.example", "autoscout24"),
        ("x@kleinanzeigen-sicher-bezahlen.example", "kleinanzeigen"),
        ("noreply@autoscout24.de", None),  # the real one
        ("anna@t-mobile.de", None),  # a real company whose name contains "mobile-de"
        ("anna@mobilfunk.example", None),
    ],
)
def test_a_domain_containing_a_platform_name_is_a_lookalike(
    address: str, imitated: str | None
) -> None:
    assert imitated_platform(address) == imitated


def test_lookalike_mail_is_no_lead_however_lead_shaped() -> None:
    raw = _mail(
        LEAD_BODY,
        sender="mobile.de <noreply@mobile.de.kontakt-center.example>",
        headers={"Reply-To": "kurt.eiler@kunde.example"},
    )
    lead = parse_raw(raw, ctx=DEALER)
    assert lead.is_lead is False
    assert lead.source == "unknown"
    assert "look-alike" in (lead.non_lead_reason or "")


def test_platform_display_name_on_a_freemail_address_is_a_lookalike() -> None:
    view = load(_mail(LEAD_BODY, sender="AutoScout24 <autoscout24@freemail.example>"))
    assert "claims to be autoscout24" in (lookalike_reason(view) or "")
    assert pick(view).NAME == "generic"


def test_platform_name_on_the_dealers_own_mailbox_is_no_lookalike() -> None:
    """A dealer's forwarding rule may keep the display name: the dealer's domain is trusted."""
    view = load(_mail(LEAD_BODY, sender="mobile.de <mobilede@autohaus-beispiel.example>"))
    assert lookalike_reason(view) is None


def test_the_real_platform_is_no_lookalike() -> None:
    view = load(_mail(LEAD_BODY, sender="mobile.de <noreply@mobile.de>"))
    assert lookalike_reason(view) is None
    assert pick(view).NAME == "mobile_de"


def test_a_customer_mentioning_a_platform_is_no_lookalike() -> None:
    raw = _mail(
        "Hallo, ich habe Ihren Golf bei mobile.de und AutoScout24 gesehen. Noch da?\n"
        "Gruß Eva Stein, Tel. 0171 5566778\n",
        sender="Eva Stein <eva.stein@mail.example>",
    )
    lead = parse_raw(raw, ctx=DEALER)
    assert lead.is_lead is True and lead.non_lead_reason is None


def test_reply_to_at_a_platform_on_a_mail_it_did_not_send_is_a_spoof() -> None:
    view = load(
        _mail(
            LEAD_BODY,
            sender="Kurt Eiler <kurt.eiler@kunde.example>",
            headers={"Reply-To": "mobile.de <noreply@mobile.de>"},
        )
    )
    assert "Reply-To at mobile.de" in (lookalike_reason(view) or "")


def test_lookalike_check_is_linear_on_hostile_domains() -> None:
    long_domain = "a" + "-mobile" * 5000 + ".example"
    view = load(_mail(LEAD_BODY, sender=f"X <x@{long_domain[:240]}>"))
    started = time.perf_counter()
    lookalike_reason(view)
    assert time.perf_counter() - started < 0.5


def _auth(result: str) -> dict[str, str]:
    return {"Authentication-Results": f"mx.autohaus-beispiel.example; {result}"}


def test_aligned_dkim_pass_from_a_platform_subdomain_is_platform_evidence() -> None:
    view = load(
        _mail(
            LEAD_BODY,
            sender="Kurt <buyer-1@kontakt.mobile.de>",
            headers=_auth("dkim=pass header.d=mail.mobile.de; spf=pass"),
        )
    )
    assert authentication_failed(view, DEALER.trusted_authserv_ids) is None
    assert authenticated_platform(view, DEALER.trusted_authserv_ids) == "mobile.de"


def test_dkim_pass_for_another_organisation_proves_nothing() -> None:
    view = load(
        _mail(
            LEAD_BODY,
            sender="Kurt <buyer-1@kontakt.mobile.de>",
            headers=_auth("dkim=fail header.d=mobile.de; dkim=pass header.d=mobile.de.x.example"),
        )
    )
    assert authentication_failed(view, DEALER.trusted_authserv_ids) == "dkim=fail"
    assert authenticated_platform(view, DEALER.trusted_authserv_ids) is None


FORM_BODY = (
    "Vorname: Carina\nNachname: Wolff\nE-Mail: carina.wolff@icloud.example\n"
    "Telefon: 0173 2468024\nNachricht: Wann wäre eine Besichtigung möglich?\n"
)


@pytest.mark.parametrize(
    ("sender", "headers", "body"),
    [
        ("Autohaus Beispiel <noreply@autohaus-beispiel.example>", {}, FORM_BODY),
        ("Website <anfrage@www.autohaus-beispiel.example>", {}, FORM_BODY),
        ("Kontaktformular Autohaus <team@autohaus-beispiel.example>", {}, FORM_BODY),
        ("Wix Forms <no-reply@crm.wix.com>", {}, FORM_BODY),
        (
            "Carina Wolff <carina.wolff@icloud.example>",
            {"Return-Path": "<www-data@web01.autohaus-beispiel.example>"},
            FORM_BODY,
        ),
        ("Site <mailer@somewhere.example>", {}, FORM_BODY + "\nPowered by WPForms\n"),
        (
            "Gebrauchtwagen <anfrage@gebrauchtwagen-zwei.example>",
            {},
            "Neue Anfrage über das Kontaktformular\n\n" + FORM_BODY,
        ),
    ],
)
def test_website_forms_are_recognised_by_mailer_or_shape(
    sender: str, headers: dict[str, str], body: str
) -> None:
    view = load(_mail(body, sender=sender, headers=headers))
    assert pick(view).NAME == "website"


@pytest.mark.parametrize(
    ("sender", "body"),
    [
        # an employee writing to the lead mailbox from the dealer's domain
        ("Michael Huber <m.huber@autohaus-beispiel.example>", FORM_BODY),
        # a portal without a parser: form-shaped, but a portal
        ("pkw.de <anfrage@pkw.de>", "Neue Anfrage über das Kontaktformular\n" + FORM_BODY),
        # a customer's own mail with a signature: no form
        ("Eva Stein <eva@mail.example>", "Hallo, noch da?\nGruß Eva\nTel. 0171 5566778\n"),
        # a mailer daemon of the dealer's own domain
        ("MAILER-DAEMON@mx.autohaus-beispiel.example", FORM_BODY),
    ],
)
def test_near_misses_are_not_website_forms(sender: str, body: str) -> None:
    view = load(_mail(body, sender=sender))
    assert pick(view).NAME != "website"


def test_a_dealer_mailbox_at_a_freemail_provider_is_no_own_site() -> None:
    """A dealer using Gmail does not own gmail: a customer at Gmail is no website form."""
    view = load(
        _mail(FORM_BODY, sender="Eva Stein <info@gmail.com>", to="autohaus.beispiel@gmail.com")
    )
    assert pick(view).NAME != "website"


def test_form_builder_chrome_stays_out_of_the_message() -> None:
    body = (
        "Name: Aleksandra Nowak\nE-Mail: a.nowak@wp.example\nNachricht: Mit Automatik?\n\n"
        "---\n\nDatum: 1. Dezember 2026\nSeiten-URL: https://autohaus-beispiel.example/x\n"
        "User Agent: Mozilla/5.0\nRemote IP: 203.0.113.57\nBereitgestellt von: Elementor\n"
    )
    lead = parse_raw(_mail(body, sender="Autohaus <wordpress@autohaus-beispiel.example>"))
    assert lead.source == "website"
    assert "Mit Automatik?" in (lead.message or "")
    assert "203.0.113.57" not in (lead.message or "")


def test_a_customer_forwarding_their_own_mail_stays_the_customer() -> None:
    body = (
        "Ich habe Ihnen gestern geschrieben, noch keine Antwort. Tel. 0172 1112223\n\n"
        "-------- Weitergeleitete Nachricht --------\nBetreff: Anfrage Zafira\n"
        "Datum: Mon, 30 Nov 2026 18:20:11 +0100\nVon: Wilhelm Adler <w.adler@mail.example>\n"
        "An: x@kontakt.mobile.de\n\nIst der Zafira noch da?\n"
    )
    lead = parse_raw(
        _mail(body, sender="Wilhelm Adler <w.adler@mail.example>", subject="WG: Anfrage Zafira"),
        ctx=DEALER,
    )
    assert lead.customer.email == "w.adler@mail.example"
    assert "noch keine Antwort" in (lead.message or "")


@pytest.mark.parametrize(
    ("sender", "subject", "body", "reason"),
    [
        (
            "Reifen Süd <newsletter@reifen-sued.example>",
            "Winteraktion",
            "Räder ab 299 €. Tel. 0800 1234567\nNewsletter abbestellen: https://x.example\n",
            "bulk mail",
        ),
        (
            "Marion Vogt <marion@mail.example>",
            "Gelesen: Ihr Angebot",
            "Ihre Nachricht\n\nwurde am Dienstag, 1. Dezember 2026 08:02 gelesen.\n",
            "read receipt",
        ),
        (
            "Service <noreply@versicherung.example>",
            "Eingangsbestätigung Ihrer Nachricht",
            "Dies ist eine automatisch generierte Eingangsbestätigung. Tel. 0800 9988776\n",
            "auto-reply",
        ),
        (
            "Buchhaltung <buchhaltung@teile.example>",
            "Rechnung Nr. 2026-1187",
            "Rechnungsbetrag 1.284,50 EUR, zahlbar innerhalb von 14 Tagen. Tel. 089 778899\n",
            "invoice",
        ),
    ],
)
def test_housekeeping_needs_two_pieces_of_evidence(
    sender: str, subject: str, body: str, reason: str
) -> None:
    lead = parse_raw(_mail(body, sender=sender, subject=subject), ctx=DEALER)
    assert lead.is_lead is False
    assert (lead.non_lead_reason or "").startswith(reason)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Rechnung", "Hallo, die Rechnung für die Inspektion fehlt mir noch. Tel. 0171 2233445\n"),
        ("Newsletter", "Ich habe Ihren Newsletter gelesen, ist der Golf noch da? 0171 2233445\n"),
        ("Gelesen: Ihr Angebot", "Ja, gelesen. Ich nehme den Golf! Tel. 0171 2233445\n"),
    ],
)
def test_a_customer_using_housekeeping_words_is_still_a_lead(subject: str, body: str) -> None:
    raw = _mail(body, sender="Eva Stein <eva.stein@mail.example>", subject=subject)
    lead = parse_raw(raw, ctx=DEALER)
    assert lead.is_lead is True, lead.non_lead_reason


def test_an_employee_forwarding_a_bounce_files_no_lead() -> None:
    """The bounce quotes the dealer's own mail; neither it nor its quote is an inquiry."""
    bounce = EmailMessage()
    bounce["From"] = "MAILER-DAEMON@mx.autohaus-beispiel.example"
    bounce["To"] = "leads@autohaus-beispiel.example"
    bounce["Subject"] = "Undelivered Mail Returned to Sender"
    bounce["Return-Path"] = "<>"
    bounce.set_content(
        "Your message could not be delivered.\n\n--- Original message ---\n"
        "From: leads@autohaus-beispiel.example\nTo: kunde@mail.example\nSubject: Ihr Angebot\n\n"
        "Name: Jana Petersen\nTelefon: 08031 2345678\n"
    )
    outer = EmailMessage()
    outer["From"] = "Michael Huber <m.huber@autohaus-beispiel.example>"
    outer["To"] = "leads@autohaus-beispiel.example"
    outer["Subject"] = "WG: Undelivered Mail Returned to Sender"
    outer.set_content("Bitte prüfen.\n")
    outer.add_attachment(bounce)
    lead = parse_raw(bytes(outer), ctx=DEALER)
    assert lead.is_lead is False
    assert (lead.non_lead_reason or "").startswith("bounce")


def test_a_message_id_at_the_dealers_domain_alone_makes_no_website_form() -> None:
    """Test corpora and internal Exchange mail share one domain: no form without shape."""
    view = load(
        _mail(
            "Hallo, anbei die Unterlagen.\nGruß Eva\n",
            sender="Eva Stein <eva@autohaus-beispiel.example>",
            headers={"Message-ID": "<abc@autohaus-beispiel.example>"},
        )
    )
    assert pick(view).NAME != "website"


def test_a_platform_mail_bouncing_via_its_mail_provider_is_no_lookalike() -> None:
    view = load(
        _mail(
            LEAD_BODY,
            sender="mobile.de <noreply@mobile.de>",
            headers={"Return-Path": "<bounce-77@mobile-de.bounces.esp.example>"},
        )
    )
    assert lookalike_reason(view) is None
    assert pick(view).NAME == "mobile_de"


def test_a_lookalike_reply_to_on_a_platform_from_is_phishing() -> None:
    view = load(
        _mail(
            LEAD_BODY,
            sender="mobile.de <noreply@mobile.de>",
            headers={"Reply-To": "support@mobile-de-support.example"},
        )
    )
    assert "imitates mobile.de" in (lookalike_reason(view) or "")


@pytest.mark.parametrize(
    ("sender", "lookalike"),
    [
        ("X <autoscout24@freemail.example>", True),
        ("X <mobilede.kundenservice@freemail.example>", True),
        ("Max Hunter <max.autoscout24@freemail.example>", False),  # a car hunter's own mailbox
    ],
)
def test_a_local_part_claims_a_platform_only_when_it_speaks_for_it(
    sender: str, lookalike: bool
) -> None:
    view = load(_mail(LEAD_BODY, sender=sender))
    assert (lookalike_reason(view) is not None) is lookalike


@pytest.mark.parametrize(
    "number_line",
    ["Lead-ID: TLM-4488", "ANFRAGE-ID\tTLM-4488", "Vorgangsnummer\nTLM-4488", "Lead number :TLM-1"],
)
def test_an_oem_lead_is_recognised_in_any_wording_of_its_number(number_line: str) -> None:
    body = (
        f"Toyota Lead Management\n{number_line}\nBitte innerhalb von 24 Stunden kontaktieren.\n\n"
        "Vorname: Henrik\nNachname: Gellert\nE-Mail: henrik.gellert@mailbox.example\n"
    )
    view = load(_mail(body, sender="Toyota Lead Management <leads@toyota-partner.example>"))
    assert pick(view).NAME == "oem_brands"
    assert parse_raw(_mail(body, sender="Toyota <leads@toyota-partner.example>")).source == (
        "oem:toyota"
    )


def test_a_brand_in_the_vehicle_text_makes_no_oem_lead() -> None:
    body = "Lead-ID: X-1234\nFahrzeug: Toyota Yaris\nName: Eva Stein\nE-Mail: eva@mail.example\n"
    view = load(_mail(body, sender="Eva Stein <eva@mail.example>", subject="Frage"))
    assert pick(view).NAME != "oem_brands"
