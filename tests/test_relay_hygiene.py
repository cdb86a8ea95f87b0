"""Issue 17 item 5: nothing of mailgate's own (action links, the quoted staff mail) reaches a
customer, whatever the mail client's quote format, in text and in HTML."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.escalation.authenticity import assignee_token
from mailgate.escalation.quotes import own_text_of_html, own_words
from mailgate.escalation.replies import tracking_address
from mailgate.models import Lead, OutboxMail
from mailgate.outbound.hygiene import has_action_link, is_action_link, scrub_html, scrub_text

from .conversation_helpers import (
    BASE_URL,
    HTML_FORMATS,
    TEXT_FORMATS,
    all_text,
    body,
    ingest,
    quoted_html,
    quoted_text,
    reply_mail,
    rows,
    sent_mail,
    setup_dealer,
)
from .mails import LEAD_ADDRESS, inquiry

SIGNED = f"{BASE_URL}/m/MTo0NzExOmNvbnRhY3RlZDoxNzY0NTAwMDAwOmFiYw.q1w2e3r4t5z6u7i8o9p0aSdFgH"
NOTIFICATION_TEXT = (
    "Guten Tag Anna Schmidt,\n\nIhnen wurde eine neue Anfrage zugewiesen (Lead 1).\n"
    f"Zum Lead: {BASE_URL}/leads/1\n  Ich habe den Kunden kontaktiert: {SIGNED}\n"
)
NOTIFICATION_HTML = (
    f'<p>Guten Tag Anna Schmidt,</p><p><a href="{BASE_URL}/leads/1">Lead öffnen</a></p>'
    f'<ul><li><a href="{SIGNED}">Ich habe den Kunden kontaktiert</a></li></ul>'
)
OWN = "Guten Tag Frau Musterfrau,\n\nder Golf ist da, Probefahrt gern am Montag.\n\nAnna Schmidt"
SENDER = "Autohaus Beispiel Verkauf <leads+1-Tok3n@autohaus.example>"


# --- the quote stripper, every format --------------------------------------------------------


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_text_quotes_of_every_client_are_cut(fmt: str) -> None:
    text = f"{OWN}\n\n{quoted_text(fmt, NOTIFICATION_TEXT, SENDER, '[Lead 1] Neue Anfrage')}"
    assert own_words(text) == OWN


@pytest.mark.parametrize("fmt", HTML_FORMATS)
def test_html_quotes_of_every_client_are_cut(fmt: str) -> None:
    own = "".join(f"<div>{line or '<br>'}</div>" for line in OWN.splitlines())
    markup = (
        f"<html><body>{own}{quoted_html(fmt, NOTIFICATION_HTML, SENDER, 'Betreff')}</body></html>"
    )
    words = own_text_of_html(markup)
    assert "Probefahrt gern am Montag" in words and "Anna Schmidt" in words
    assert "Lead öffnen" not in words and "kontaktiert" not in words and "schrieb" not in words


@pytest.mark.parametrize("fmt", ["gt", "apple", "gmail_en_wrapped", "thunderbird"])
def test_an_answer_below_or_between_quotes_is_kept_and_the_quote_goes(fmt: str) -> None:
    quoted = quoted_text(fmt, NOTIFICATION_TEXT, SENDER, "[Lead 1] Neue Anfrage")
    lines = quoted.splitlines()
    middle = next(i for i, line in enumerate(lines) if "Zum Lead" in line)
    interleaved = [*lines[:middle], "Erledigt, ich rufe sie an.", *lines[middle:], "Anna"]
    words = own_words("\n".join(interleaved))
    assert words.split() == ["Erledigt,", "ich", "rufe", "sie", "an.", "Anna"]
    assert own_words(quoted) == ""  # a bare quote relays nothing of ours


def test_own_words_keep_what_only_looks_like_a_header() -> None:
    text = "Von: 9 bis 18 Uhr bin ich erreichbar.\nAm Montag um 10 Uhr passt es.\nAnna"
    assert own_words(text) == text


# --- the last filter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        SIGNED,
        "http://leads.autohaus.example/leads/7/take",
        "https://LEADS.autohaus.example/password/reset/abc",
        "https://other-host.example/m/MTo0NzExOmNvbnRhY3RlZA.q1w2e3r4t5z6u7i8o9p0",  # signed shape
        "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fleads.autohaus.example"
        "%2Fm%2FMTo0NzEx.q1w2e3r4t5z6u7i8o9p0aS&data=05",
    ],
)
def test_mailgate_links_are_recognised_and_removed(url: str) -> None:
    assert is_action_link(url, BASE_URL)
    text = f"Bitte hier klicken: {url} danke"
    assert not has_action_link(scrub_text(text, BASE_URL), BASE_URL)
    assert scrub_text(text, BASE_URL).startswith("Bitte hier klicken:")
    markup = f'<p>Hier: <a href="{url.replace("&", "&amp;")}">kontaktiert</a> danke</p>'
    cleaned = scrub_html(markup, BASE_URL)
    assert "href" not in cleaned and "kontaktiert" in cleaned


def test_the_dealers_own_website_stays() -> None:
    for url in (
        "https://autohaus.example/fahrzeuge/golf",
        "https://leads.autohaus.example.evil.example/x",
    ):
        assert not is_action_link(url, BASE_URL)
        assert scrub_text(f"Siehe {url}", BASE_URL) == f"Siehe {url}"


# --- end to end: a real notification, replies in random formats, the relayed mail ------------


def _notification(factory: sessionmaker[Session]) -> tuple[Lead, object]:
    ingest(factory, inquiry(1, name="Erika Musterfrau", email="erika@kunden.example"))
    with factory() as session:
        lead = session.scalars(select(Lead)).one()
        session.expunge(lead)
    [row] = rows(factory, "notification")
    return lead, sent_mail(factory, row.id)


def test_the_real_notification_carries_links_to_strip(dealer: sessionmaker[Session]) -> None:
    """The premise of the property test: the mail quoted below does hold live action links."""
    setup_dealer(dealer)
    _, notification = _notification(dealer)
    assert has_action_link(body(notification, "plain"), BASE_URL)  # type: ignore[arg-type]
    assert "/m/" in body(notification, "html")  # type: ignore[arg-type]


_ids = itertools.count()


@pytest.mark.parametrize("fmt", TEXT_FORMATS + HTML_FORMATS)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    html_only=st.booleans(),
    own=st.lists(
        st.sampled_from(
            [
                "Guten Tag Frau Musterfrau,",
                "der Golf ist verfügbar.",
                "Probefahrt gern am Montag um 10 Uhr.",
                "Von: 9 bis 18 Uhr erreichbar.",
                "Unser Angebot: https://autohaus.example/angebote/golf",
                "Viele Grüße, Anna Schmidt",
                "",
            ]
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_no_relayed_mail_to_a_customer_contains_a_mailgate_link(
    dealer: sessionmaker[Session], fmt: str, html_only: bool, own: list[str]
) -> None:
    if not rows(dealer, "notification"):
        setup_dealer(dealer)
        _notification(dealer)
    with dealer() as session:
        lead = session.scalars(select(Lead)).one()
        token, lead_id, assignee_id = lead.reply_token, lead.id, lead.assignee_id or 0
    with db.session_scope(dealer) as session:  # each example starts without relays (the cap)
        session.execute(delete(OutboxMail).where(OutboxMail.purpose == "relay_to_customer"))
    [row] = rows(dealer, "notification")
    notification = sent_mail(dealer, row.id)
    words = "\n".join(own).strip() or "Danke."
    raw = reply_mail(
        sender="Anna Schmidt <anna@autohaus.example>",
        to=str(notification["Reply-To"]),
        subject=f"AW: {notification['Subject']}",
        own=words,
        original=notification,  # type: ignore[arg-type]
        fmt=fmt,
        message_id=f"<reply-{next(_ids)}@client.example>",
        html_only=html_only,
    )
    # the notification carries the token bound to the lead and its assignee
    assert tracking_address(LEAD_ADDRESS, lead_id, assignee_token(token, assignee_id)) in str(
        notification["Reply-To"]
    )
    inbound = ingest(dealer, raw)
    assert inbound.status == "processed", inbound.status_reason
    [relay] = rows(dealer, "relay_to_customer")
    relayed = sent_mail(dealer, relay.id)
    everything = all_text(relayed)  # type: ignore[arg-type]
    assert not has_action_link(everything, BASE_URL), everything
    assert "/m/" not in everything and "Lead öffnen" not in everything
    assert "Ihnen wurde eine neue Anfrage" not in everything  # the staff mail is not quoted
    for line in words.splitlines():
        assert line.strip() in body(relayed, "plain")  # type: ignore[arg-type]
    assert relayed["Subject"] == "AW: Neue Anfrage über das Kontaktformular #1"
    _relayed[fmt] = _relayed.get(fmt, 0) + 1


_relayed: dict[str, int] = {}


def test_zz_figure_of_the_property_test() -> None:
    """Runs after the property test (file order): prints what it relayed."""
    if _relayed:
        print(
            f"FIGURE item 5 replies relayed to a customer in {len(_relayed)} quote formats: "
            f"{sum(_relayed.values())}, with a mailgate link or the quoted staff mail: 0"
        )
