"""Status feedback to the lead's source (seeds 000, 003): a templated mail per status change
and on close, through the outbox, never twice; settings validated.  Both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.db import session_scope
from mailgate.dealer_settings import (
    SettingsError,
    export_settings,
    import_settings,
    load_dealer_config,
)
from mailgate.escalation.actions import close_lead, log_contact, reopen_lead, set_stage
from mailgate.escalation.feedback import channel_for, report_status
from mailgate.models import Lead, OutboxMail

from .distribution_helpers import form_mail, ingest, leads, setup, team_toml

OPEL_LEAD = (
    Path(__file__).parent / "fixtures/mails/oem_opel/leadit-angebot-utf8-qp.eml"
).read_bytes()
FEEDBACK = (
    '\n[[feedback]]\nsource = "oem:*"\nto = "leadit-status@opel-partner.example"\nlanguage = "de"\n'
)
NOW = datetime.now(UTC)


@pytest.fixture(name="team")
def team_fixture(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    setup(factory, team_toml(extra=FEEDBACK))
    return factory


def feedback_mails(factory: sessionmaker[Session]) -> list[tuple[list[str], str, str]]:
    """(recipients, subject, text) of every queued feedback mail, oldest first."""
    out = []
    with factory() as session:
        dealer = load_dealer_config(session)
        rows = session.scalars(
            select(OutboxMail)
            .where(OutboxMail.purpose == "source_feedback")
            .order_by(OutboxMail.id)
        )
        for row in rows:
            from mailgate.outbound.outbox import materialise

            composed = materialise(dealer, row)
            raw = composed.raw if composed is not None else row.raw
            assert raw is not None
            message = message_from_bytes(raw, policy=policy.default)
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            out.append((list(row.recipients), str(message["Subject"]), text))
    return out


def test_each_status_change_and_the_close_are_reported_once(team: sessionmaker[Session]) -> None:
    ingest(team, OPEL_LEAD)
    (lead,) = leads(team)
    assert feedback_mails(team) == []  # arrival is no change
    with session_scope(team) as session:
        log_contact(session, lead.id, "anna@autohaus.example", NOW, "phone")
        set_stage(session, lead.id, "anna@autohaus.example", NOW + timedelta(days=1), "offer")
        close_lead(session, lead.id, "anna@autohaus.example", NOW + timedelta(days=2), "sold")
    mails = feedback_mails(team)
    assert [m[1] for m in mails] == [
        "Statusmeldung zu Lead 2718281: kontaktiert",
        "Statusmeldung zu Lead 2718281: Angebot",
        "Statusmeldung zu Lead 2718281: abgeschlossen",
    ]
    assert all(m[0] == ["leadit-status@opel-partner.example"] for m in mails)
    closing = mails[-1][2]
    assert "Ihre Lead-Nummer: 2718281" in closing and f"Unsere Lead-Nummer: {lead.id}" in closing
    assert "Kampagne: 812 - Angebotsanfrage opel.de" in closing
    assert "Abschlussgrund: Fahrzeug verkauft (gewonnen)" in closing
    # the same change reported again (a retried transaction): still one mail
    with session_scope(team) as session:
        from mailgate.escalation.feedback import latest_entry

        entry = latest_entry(session, lead.id)
        assert report_status(session, lead.id, entry_id=entry) is False
    assert len(feedback_mails(team)) == 3
    with session_scope(team) as session:
        reopen_lead(session, load_dealer_config(session), lead.id, "anna@autohaus.example", NOW)
    assert feedback_mails(team)[-1][1] == "Statusmeldung zu Lead 2718281: kontaktiert"


def test_sources_without_a_channel_hear_nothing(team: sessionmaker[Session]) -> None:
    ingest(team, form_mail(1))
    (lead,) = leads(team)
    with session_scope(team) as session:
        set_stage(session, lead.id, "anna@autohaus.example", NOW, "test_drive")
        close_lead(session, lead.id, "anna@autohaus.example", NOW, "no_interest")
    assert feedback_mails(team) == []


def test_channel_matching_and_settings() -> None:
    channels = [
        {"source": "oem:opel", "to": "a@x.example", "enabled": False},
        {"source": "OEM:*", "to": "b@x.example", "enabled": True},
    ]
    chosen = channel_for(channels, "oem:opel")
    assert chosen is not None and chosen["to"] == "b@x.example"  # disabled skipped, case-blind
    assert channel_for(channels, "mobile.de") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('source = ""\nto = "a@x.example"', "feedback\\[0\\].source"),
        ('source = "oem:*"\nto = "kein"', "feedback\\[0\\].to"),
        ('source = "oem:*"\nto = "a@x.example"\nlanguage = "fr"', "language"),
        ('source = "oem:*"', "either an address \\(to\\) or a webhook"),
        ('source = "oem:*"\nto = "a@x.example"\nwebhook = "crm"', "either an address"),
        ('source = "oem:*"\nwebhook = "gibt-es-nicht"', "no webhook 'gibt-es-nicht'"),
        ('source = "oem:*"\nto = "a@x.example"\nurl = "x"', "unknown key feedback\\[0\\].url"),
    ],
)
def test_bad_feedback_settings_are_refused(
    dealer: sessionmaker[Session], entry: str, message: str
) -> None:
    with session_scope(dealer) as session, pytest.raises(SettingsError, match=message):
        import_settings(session, team_toml(extra=f"\n[[feedback]]\n{entry}\n"))


def test_feedback_settings_survive_export_and_import(team: sessionmaker[Session]) -> None:
    with session_scope(team) as session:
        text = export_settings(session)
    assert '[[feedback]]\nsource = "oem:*"\nto = "leadit-status@opel-partner.example"' in text
    assert 'webhook = ""' in text
    with session_scope(team) as session:
        import_settings(session, text)
        assert load_dealer_config(session).document["feedback"][0]["language"] == "de"


def test_a_source_can_hear_back_by_webhook_instead_of_mail(factory: sessionmaker[Session]) -> None:
    from mailgate.models import WebhookDelivery
    from mailgate.webhooks.admin import create_webhook

    with session_scope(factory) as session:
        oem = "https://leadit.opel-partner.example/status"
        create_webhook(session, oem, ["lead.closed"], name="leadit")  # not subscribed to changes
        crm = create_webhook(session, "https://crm.autohaus.example/hook", ["lead.status_changed"])
        crm_id = crm.id
    extra = '\n[[feedback]]\nsource = "oem:opel"\nwebhook = "leadit"\n'
    setup(factory, team_toml(extra=extra))
    ingest(factory, OPEL_LEAD)
    (lead,) = leads(factory)
    with session_scope(factory) as session:
        set_stage(session, lead.id, "anna@autohaus.example", NOW, "offer")
    with factory() as session:
        deliveries = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    changed = [d for d in deliveries if d.event == "lead.status_changed"]
    assert sorted(d.webhook_id == crm_id for d in changed) == [False, True]  # OEM + subscriber
    assert all(d.payload["data"]["status"] == "offer" for d in changed)
    assert all(d.payload["lead"]["id"] == lead.id for d in changed)
    assert feedback_mails(factory) == []  # by webhook, not by mail
    # the same webhook as feedback channel and as subscriber: one delivery per change
    setup(
        factory,
        team_toml(extra='\n[[feedback]]\nsource = "oem:opel"\nwebhook = ""\nto = "x@y.example"\n'),
    )
    with session_scope(factory) as session:
        from mailgate.models import Webhook

        session.get(Webhook, crm_id).name = "crm"  # type: ignore[union-attr]
    setup(factory, team_toml(extra='\n[[feedback]]\nsource = "oem:opel"\nwebhook = "crm"\n'))
    with session_scope(factory) as session:
        set_stage(session, lead.id, "anna@autohaus.example", NOW, "contract")
    with factory() as session:
        to_crm = session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.webhook_id == crm_id, WebhookDelivery.event == "lead.status_changed"
            )
        ).all()
    assert [d.payload["data"]["status"] for d in to_crm] == ["offer", "contract"]


CHANNEL_WITH_DATA = (
    '\n[[feedback]]\nsource = "oem:*"\nto = "leadit-status@opel-partner.example"\n'
    'language = "de"\ndealer_number = "DE0621.00"\ncustomer_data = true\n'
)


def test_close_feedback_names_the_dealer_number_and_the_corrected_customer_data(
    factory: sessionmaker[Session],
) -> None:
    """Seed 000: the dealer is known to the OEM by his dealer number (e.g. DE1000.00); a
    source that keeps customer records hears the data the dealer corrected, marked."""
    from mailgate.distribution.edits import edit_lead

    setup(factory, team_toml(extra=CHANNEL_WITH_DATA))
    ingest(factory, OPEL_LEAD)
    (lead,) = leads(factory)
    with session_scope(factory) as session:
        edit_lead(
            session, lead.id, "anna@autohaus.example", NOW, customer={"phone": "+49 821 555 0199"}
        )
        set_stage(session, lead.id, "anna@autohaus.example", NOW, "offer")
        close_lead(session, lead.id, "anna@autohaus.example", NOW + timedelta(days=1), "sold")
    offer, closing = (text for _, _, text in feedback_mails(factory))
    assert "Händlernummer: DE0621.00" in offer and "Händlernummer: DE0621.00" in closing
    assert "Kundendaten" not in offer  # the data travels with the close only
    assert "Telefon: +49 821 555 0199 *" in closing  # corrected by hand: marked
    with factory() as session:
        customer = session.get(Lead, lead.id).customer  # type: ignore[union-attr]
        assert customer is not None and customer.email
    assert f"E-Mail: {customer.email}\r\n" in closing  # as parsed: not marked


def test_channel_without_customer_data_sends_none(team: sessionmaker[Session]) -> None:
    ingest(team, OPEL_LEAD)
    (lead,) = leads(team)
    with session_scope(team) as session:
        close_lead(session, lead.id, "anna@autohaus.example", NOW, "sold")
    (closing,) = (text for _, _, text in feedback_mails(team))
    assert "Kundendaten" not in closing and "Händlernummer" not in closing


@pytest.mark.parametrize("number", ["DE0621.00\nBcc: x@evil.example", "x" * 41, "a\tb"])
def test_a_dealer_number_is_one_short_printable_line(
    dealer: sessionmaker[Session], number: str
) -> None:
    entry = f'source = "oem:*"\nto = "a@x.example"\ndealer_number = {json.dumps(number)}'
    with session_scope(dealer) as session, pytest.raises(SettingsError, match="dealer_number"):
        import_settings(session, team_toml(extra=f"\n[[feedback]]\n{entry}\n"))
