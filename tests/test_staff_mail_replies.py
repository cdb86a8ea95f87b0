"""Issue 17 items 2 and 10: every staff mail about a lead can simply be answered — the answer
reaches the customer under the conversation's subject — and reads in words, not codes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import load_dealer_config
from mailgate.escalation.actions import set_resubmission
from mailgate.escalation.authenticity import assignee_token
from mailgate.escalation.replies import tracking_address
from mailgate.escalation.scheduler import tick
from mailgate.escalation.subjects import bare_subject, customer_subject
from mailgate.labels import kind_label, source_label, status_label, waiting_for
from mailgate.models import Lead

from .conversation_helpers import (
    BASE_URL,
    DEALER_WITH_LINKS,
    all_text,
    body,
    ingest,
    reply_mail,
    rows,
    sent_mail,
    setup_dealer,
)
from .mails import LEAD_ADDRESS, inquiry
from .test_escalation import ESCALATING_DEALER, at, ingest_at

CLEAN_SUBJECT = "AW: Neue Anfrage über das Kontaktformular #1"
INTERNAL_WORDS = ("[Lead", "Überfällig", "Erinnerung", "Eskalation", "Wiedervorlage", "Pool")
HINT = "Antworten Sie einfach auf diese Mail – die Antwort geht an den Kunden"
_ids = itertools.count()


def _answer(factory: sessionmaker[Session], mail: Message, sender: str, fmt: str) -> Message:
    """Answer ``mail`` as a mail client does (Reply-To, "AW: " + its subject, its quote)."""
    raw = reply_mail(
        sender=sender,
        to=str(mail["Reply-To"]),
        subject=f"AW: {mail['Subject']}",
        own="Guten Tag, die Probefahrt ist am Montag möglich.\nAnna Schmidt",
        original=mail,
        fmt=fmt,
        message_id=f"<staff-reply-{next(_ids)}@client.example>",
    )
    inbound = ingest(factory, raw)
    assert inbound.status == "processed", inbound.status_reason
    relay = rows(factory, "relay_to_customer")[-1]
    assert relay.recipients == ["kunde1@kunden.example"]
    return sent_mail(factory, relay.id)


def _check_staff_mail(mail: Message, lead: Lead) -> None:
    # the assignee's own mails carry his token (bound to lead and assignee), the others the lead's
    assert lead.assignee_id is not None
    tokens = (lead.reply_token, assignee_token(lead.reply_token, lead.assignee_id))
    addresses = [tracking_address(LEAD_ADDRESS, lead.id, token) for token in tokens]
    assert any(a in str(mail["Reply-To"]) for a in addresses), (mail["Subject"], mail["Reply-To"])
    for kind in ("plain", "html"):
        text = body(mail, kind)
        assert HINT in text, (mail["Subject"], kind)
        # what the lead is about: vehicle and the customer's words, without opening the lead
        assert "Volkswagen Golf 8 GTI" in text and "Ist das Fahrzeug noch verfügbar?" in text


def _check_relayed(relayed: Message) -> None:
    assert relayed["Subject"] == CLEAN_SUBJECT
    text = all_text(relayed)
    assert not any(word in text for word in INTERNAL_WORDS), text
    assert "Probefahrt ist am Montag möglich" in body(relayed, "plain")
    assert BASE_URL not in text


def test_replying_to_each_ladder_mail_gives_the_customer_a_clean_subject(
    dealer: sessionmaker[Session],
) -> None:
    setup_dealer(
        dealer,
        ESCALATING_DEALER.replace(
            'language = "de"\n', f'language = "de"\nbase_url = "{BASE_URL}"\n'
        ),
    )
    lead_id = ingest_at(dealer, at("2026-11-27 16:00"))
    for moment in ("2026-11-30 09:00", "2026-11-30 10:00", "2026-12-01 10:00"):
        tick(dealer, now=at(moment))
    with dealer() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        session.expunge(lead)
    staff = {
        purpose: sent_mail(dealer, rows(dealer, purpose)[0].id)
        for purpose in ("notification", "reminder", "stage1", "stage2")
    }
    assert "seit 2 Tagen und 18 Stunden" in str(staff["stage1"]["Subject"])
    assert "seit 3 Tagen und 18 Stunden" in str(staff["stage2"]["Subject"])
    for purpose, mail in staff.items():
        _check_staff_mail(mail, lead)
        sender = (
            "Carl Chef <chef@autohaus.example>" if purpose == "stage2" else "anna@autohaus.example"
        )
        fmt = {"notification": "gt", "reminder": "outlook_de", "stage1": "gmail_de"}.get(
            purpose, "outlook_web"
        )
        _check_relayed(_answer(dealer, mail, sender, fmt))

    # a resubmission after the answer: its mail is answerable the same way
    now = datetime.now(UTC)
    when = now + timedelta(days=1)
    while when.astimezone(at("2026-01-01 00:00").tzinfo).weekday() >= 5:
        when += timedelta(days=1)
    when = when.astimezone(at("2026-01-01 00:00").tzinfo).replace(hour=11, minute=0)
    with db.session_scope(dealer) as session:
        set_resubmission(
            session, load_dealer_config(session), lead_id, "anna@autohaus.example", now, when
        )
    tick(dealer, now=when)
    [resubmission] = rows(dealer, "resubmission")
    mail = sent_mail(dealer, resubmission.id)
    _check_staff_mail(mail, lead)
    _check_relayed(_answer(dealer, mail, "anna@autohaus.example", "apple"))
    relayed = [sent_mail(dealer, r.id) for r in rows(dealer, "relay_to_customer")]
    internal = [m["Subject"] for m in relayed if m["Subject"] != CLEAN_SUBJECT]
    print(
        f"FIGURE R7 answers to staff mails ({', '.join([*staff, 'resubmission'])}) relayed: "
        f"{len(relayed)}/5, internal subjects to the customer: {len(internal)}"
    )


def test_replying_to_the_pool_notice_reaches_the_customer(dealer: sessionmaker[Session]) -> None:
    pool = (
        DEALER_WITH_LINKS.replace(
            '[distribution]\nfallback_user = "anna@autohaus.example"\n',
            '[distribution]\nmode = "pool"\npool_user = "pool@autohaus.example"\n'
            "pool_notice = true\n",
        ).replace(  # Anna takes from the pool rather than being given leads
            'supervisor = "chef@autohaus.example"\n',
            'supervisor = "chef@autohaus.example"\nreceives_leads = false\n',
        )
        + '\n[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n'
    )
    setup_dealer(dealer, pool)
    ingest(dealer, inquiry(1))
    with dealer() as session:
        lead = session.scalars(select(Lead)).one()
        session.expunge(lead)
    notices = [r for r in rows(dealer, "pool_notice") if r.recipients == ["anna@autohaus.example"]]
    mail = sent_mail(dealer, notices[0].id)
    _check_staff_mail(mail, lead)
    _check_relayed(_answer(dealer, mail, "anna@autohaus.example", "thunderbird"))


def test_the_notification_names_source_and_kind_in_words(dealer: sessionmaker[Session]) -> None:
    setup_dealer(dealer)
    ingest(dealer, inquiry(1))
    with dealer() as session:
        lead = session.scalars(select(Lead)).one()
    mail = sent_mail(dealer, rows(dealer, "notification")[0].id)
    text = body(mail, "plain")
    line = f"Quelle: {source_label(lead.source)} · Art: {kind_label(lead.kind)}"
    assert line in text, text
    assert f"· Art: {lead.kind}\n" not in text or kind_label(lead.kind) == lead.kind
    assert f"Quelle: {lead.source} " not in text or source_label(lead.source) == lead.source
    assert f"{source_label(lead.source)} · {kind_label(lead.kind)}" in body(mail, "html")


# --- the pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "de", "en"),
    [
        ("mobile.de", "mobile.de", "mobile.de"),
        ("autoscout24", "AutoScout24", "AutoScout24"),
        ("kleinanzeigen", "Kleinanzeigen", "Kleinanzeigen"),
        ("website", "Website", "Website"),
        ("oem:nissan", "Hersteller: Nissan", "Manufacturer: Nissan"),
        ("oem:mercedes-benz", "Hersteller: Mercedes-Benz", "Manufacturer: Mercedes-Benz"),
        ("unknown", "Unbekannt", "Unknown"),
        ("Autoshow 2026", "Autoshow 2026", "Autoshow 2026"),  # a manual lead's origin
    ],
)
def test_source_names(code: str, de: str, en: str) -> None:
    assert (source_label(code, "de"), source_label(code, "en")) == (de, en)


def test_kind_and_status_names() -> None:
    assert (
        kind_label("test_drive") == "Probefahrt" and kind_label("test_drive", "en") == "Test drive"
    )
    assert status_label("contacted") == "kontaktiert" and status_label("closed", "en") == "closed"


@pytest.mark.parametrize(
    ("elapsed", "de", "en"),
    [
        (timedelta(hours=1), "1 Stunde", "1 hour"),
        (timedelta(hours=4), "4 Stunden", "4 hours"),
        (timedelta(days=1), "1 Tag", "1 day"),
        (timedelta(days=2), "2 Tagen", "2 days"),
        (timedelta(days=1, hours=1), "1 Tag und 1 Stunde", "1 day and 1 hour"),
        (timedelta(days=2, hours=18, minutes=5), "2 Tagen und 18 Stunden", "2 days and 18 hours"),
        (timedelta(minutes=1), "1 Minute", "1 minute"),
        (timedelta(minutes=30), "30 Minuten", "30 minutes"),
        (timedelta(0), "0 Minuten", "0 minutes"),
    ],
)
def test_waiting_times_read_right_after_seit(elapsed: timedelta, de: str, en: str) -> None:
    assert (waiting_for(elapsed, "de"), waiting_for(elapsed, "en")) == (de, en)


@pytest.mark.parametrize(
    ("subject", "bare"),
    [
        ("AW: AW: Re: WG: Golf GTI", "Golf GTI"),
        ("RE[2]: Antw: Fwd: [Lead 12] Frage zum Golf", "Frage zum Golf"),
        ("[EXTERN] Re: Frage", "Frage"),
        ("Golf: Frage zur Ausstattung", "Golf: Frage zur Ausstattung"),
    ],
)
def test_reply_prefixes_are_removed_whatever_their_number(subject: str, bare: str) -> None:
    assert bare_subject(subject) == bare


def test_the_customer_subject_comes_from_the_conversation() -> None:
    lead = {"subject": "Re: AW: Frage zum Golf", "vehicle": {}}
    assert customer_subject(lead, "Autohaus Beispiel", "de") == "AW: Frage zum Golf"
    assert customer_subject(lead, "Autohaus Beispiel", "en") == "Re: Frage zum Golf"
    manual = {"subject": None, "vehicle": {"make": "VW", "model": "Golf"}}
    assert customer_subject(manual, "Autohaus Beispiel", "de") == (
        "AW: Ihre Anfrage bei Autohaus Beispiel: VW Golf"
    )


@pytest.mark.parametrize(
    ("locale", "kind", "status"),
    [("de", "Probefahrt", "kontaktiert"), ("en", "Test drive", "contacted")],
)
def test_the_web_ui_shows_the_same_words_from_the_one_table(
    locale: str, kind: str, status: str
) -> None:
    """Mails and web UI read kinds and statuses from mailgate.labels: no second table."""
    from flask import Flask
    from flask_babel import Babel

    from mailgate.webui.labels import label

    app = Flask(__name__)
    Babel(app, locale_selector=lambda: locale)
    with app.test_request_context():
        assert label("test_drive", "kind") == kind == kind_label("test_drive", locale)
        assert label("contacted", "lead_status") == status == status_label("contacted", locale)
        assert label("oem:nissan", "source") == source_label("oem:nissan", locale)
        assert label("autoscout24", "source") == "AutoScout24"


def test_in_cc_mode_a_reminder_answer_is_relayed_not_sent_with_its_subject(
    dealer: sessionmaker[Session],
) -> None:
    """``reply_mode = "cc"`` puts the customer into the notification's Reply-To; a reminder
    must not (its subject would reach him straight): its answer comes to us and is relayed."""
    toml = ESCALATING_DEALER.replace(
        'language = "de"\n', f'language = "de"\nbase_url = "{BASE_URL}"\nreply_mode = "cc"\n'
    )
    setup_dealer(dealer, toml)
    lead_id = ingest_at(dealer, at("2026-11-27 16:00"))
    tick(dealer, now=at("2026-11-30 09:00"))
    notification = sent_mail(dealer, rows(dealer, "notification")[0].id)
    assert "kunde1@kunden.example" in str(notification["Reply-To"])  # cc mode, as configured
    reminder = sent_mail(dealer, rows(dealer, "reminder")[0].id)
    assert "kunde1@kunden.example" not in str(reminder["Reply-To"])
    with dealer() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        # the reminder is the assignee's: it carries his token, bound to the lead and him
        mine = assignee_token(lead.reply_token, lead.assignee_id)
        assert tracking_address(LEAD_ADDRESS, lead_id, mine) in str(reminder["Reply-To"])
    _check_relayed(_answer(dealer, reminder, "anna@autohaus.example", "outlook_de"))


def test_the_delivery_failure_notice_names_the_mail_in_words(dealer: sessionmaker[Session]) -> None:
    from email import message_from_bytes, policy

    from mailgate.models import OutboxMail
    from mailgate.outbound.send import _failure_notice

    with dealer() as session:
        config = load_dealer_config(session)
    failed = OutboxMail(id=9, purpose="stage1", recipients=["anna@autohaus.example"], subject="")
    notice = _failure_notice(config, failed, "550 5.1.1 unknown user")
    assert notice is not None
    mail = message_from_bytes(notice.raw, policy=policy.default)
    assert mail["Subject"] == "Zustellung fehlgeschlagen: Eskalation Stufe 1"
    assert "Nr. 9 (Eskalation Stufe 1)" in body(mail, "plain")  # type: ignore[arg-type]
    assert "stage1" not in all_text(mail)  # type: ignore[arg-type]


def test_mail_purposes_are_one_table_for_mails_and_web_ui() -> None:
    from flask import Flask
    from flask_babel import Babel

    from mailgate.labels import purpose_label
    from mailgate.webui.labels import label
    from mailgate.webui.lead import labels as lead_labels

    lead_labels.register()
    app = Flask(__name__)
    Babel(app, locale_selector=lambda: "de")
    with app.test_request_context():
        assert label("stage2", "mail_purpose") == purpose_label("stage2", "de")
        assert label("stage2", "mail_purpose") == "Eskalation an die Teamleitung"
