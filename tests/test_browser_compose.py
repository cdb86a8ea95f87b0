"""Answering from the lead page in a real browser (issue 17 items 8, 9): Chromium picks an
answer template, attaches a PDF, sends; the outbox sender delivers to a real SMTP relay
(an aiosmtpd sink), where the PDF arrives byte for byte, threaded, from the lead address
under the salesperson's name.  Then the conversation shows the answer, at 1366 px and on a
phone (390 px), without anything wider than the screen.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import expect
from sqlalchemy import select, update

from mailgate.config import Settings
from mailgate.ingest.store import store_raw
from mailgate.models import AnswerTemplate, Lead, User
from mailgate.outbound.send import send_pass
from mailgate.worker import process_pending

from .browser import ARTIFACTS, LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .conftest import free_port
from .distribution_helpers import form_mail, ingest, setup, team_toml
from .test_sender import Sink, settings_for
from .webui_helpers import ensure_user

ANNA = "anna@autohaus.example"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


@pytest.fixture
def relay() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def _lead(live: LiveWeb) -> int:
    setup(live.factory, team_toml())
    ensure_user(live.factory, ANNA, "salesperson", name="Anna Schmidt")
    with live.factory.begin() as session:
        session.add(
            AnswerTemplate(
                name="Angebot mit Exposé",
                language="de",
                subject="Ihr Angebot: {{ vehicle.make }} {{ vehicle.model }}",
                body=(
                    "Guten Tag {{ customer.name }},\n\nvielen Dank für Ihr Interesse am "
                    "{{ vehicle.make }} {{ vehicle.model }}. Anbei finden Sie unser Angebot "
                    "und das Exposé.\n\nMit freundlichen Grüßen\n{{ salesperson.name }}\n"
                    "{{ dealer_name }}"
                ),
            )
        )
    ingest(live.factory, form_mail(1, name="Fritz Fröhlich", message="Ist der Astra noch da?"))
    with live.factory.begin() as session:
        lead_id = session.scalar(select(Lead.id))
        anna = session.scalar(select(User.id).where(User.email == ANNA))
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(assignee_id=anna, status="assigned")
        )
    assert lead_id is not None
    return lead_id


def _customer_reply(live: LiveWeb, lead_id: int) -> None:
    """The customer writes again to the tracking address, with a photo: a message in."""
    with live.factory() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        tracking = f"leads+{lead_id}-{lead.reply_token}@autohaus.example"
    msg = EmailMessage()
    msg["From"] = "Fritz Fröhlich <person1@kunden.example>"
    msg["To"] = tracking
    msg["Subject"] = "AW: Anfrage zu Ihrem Fahrzeug #1"
    msg["Message-ID"] = "<fritz-2@kunden.example>"
    msg.set_content(
        "Hier noch ein Foto von meinem jetzigen Wagen für die Inzahlungnahme.\n\n"
        "Am 20.11.2026 schrieb Autohaus Beispiel:\n> Vielen Dank für Ihre Anfrage.\n"
    )
    msg.add_attachment(
        b"\xff\xd8\xff\xe0JFIF" + b"\0" * 2000, "image", "jpeg", filename="zafira.jpg"
    )
    store_raw(
        live.factory,
        msg.as_bytes(policy=policy.SMTP),
        channel="smtp",
        envelope_from="person1@kunden.example",
        envelope_to=[tracking],
    )
    assert process_pending(live.factory, Settings()).statuses == {"processed": 1}


def test_compose_from_the_lead_page_with_a_template_and_a_pdf(
    page: Any,  # noqa: F811
    live_web: LiveWeb,  # noqa: F811
    relay: tuple[Sink, int],
    tmp_path: Path,
) -> None:
    sink, port = relay
    lead_id = _lead(live_web)
    _customer_reply(live_web, lead_id)
    offer = tmp_path / "Angebot Opel Astra.pdf"
    offer.write_bytes(PDF)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_web.url, ANNA)
    page.goto(f"{live_web.url}/leads/{lead_id}")
    # the customer's address leads to the form, not to a mailto: past the tracking
    page.locator("#customer-email").get_by_role("link", name="person1@kunden.example").click()
    form = page.locator("#answer")
    assert form.get_by_role("heading", name="Dem Kunden antworten").is_visible()
    form.get_by_label("Antwortvorlage").select_option(label="Angebot mit Exposé (Deutsch)")
    form.get_by_role("button", name="Vorlage übernehmen").click()
    body = page.locator("#answer-body")
    assert "Guten Tag Fritz Fröhlich," in body.input_value()
    assert "am Opel Astra. Anbei finden Sie" in body.input_value()
    assert page.locator("#answer-subject").input_value() == "Ihr Angebot: Opel Astra"
    body.fill(body.input_value().replace("Anbei finden", "Gerne auch mit Probefahrt. Anbei finden"))
    # too large: said at once, in German, and the browser does not submit
    big = tmp_path / "riesig.pdf"
    big.write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    chosen = page.locator("#answer-attachments-chosen")
    assert chosen.inner_text() == "Keine Datei ausgewählt"
    page.locator("#answer-attachments").set_input_files(str(big))
    too_large = "Zu groß: Die Anhänge dürfen zusammen höchstens 10 MB haben."
    assert chosen.inner_text() == too_large
    assert page.locator("#answer-attachments").evaluate("e => e.validationMessage") == too_large
    page.locator("#answer-attachments").set_input_files(str(offer))
    assert chosen.inner_text() == "Angebot Opel Astra.pdf (17 KB)"
    assert page.get_by_text("Dateien auswählen").is_visible()
    screenshot(page, "lead-answer-compose")
    page.get_by_role("button", name="An den Kunden senden").click()
    assert page.get_by_role("status").first.inner_text() == (
        "Ihre Antwort an Fritz Fröhlich ist unterwegs; die Anfrage gilt als beantwortet."
    )
    assert page.locator("#lead-status").inner_text() == "kontaktiert"

    # the sender delivers to a real SMTP relay: what arrives is what was uploaded
    report = send_pass(live_web.factory, settings_for(port))
    assert report.sent >= 1
    to_customer = [raw for _, rcpts, raw in sink.received if rcpts == ["person1@kunden.example"]]
    assert len(to_customer) == 1
    msg = message_from_bytes(to_customer[0], policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["From"].addresses[0].addr_spec == "leads@autohaus.example"
    assert msg["From"].addresses[0].display_name.startswith("Anna Schmidt")
    assert msg["Reply-To"].addresses[0].addr_spec.startswith(f"leads+{lead_id}-")
    assert msg["In-Reply-To"] == "<fritz-2@kunden.example>"
    assert msg["Subject"] == "Ihr Angebot: Opel Astra"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Gerne auch mit Probefahrt." in text and "Anna Schmidt" in text
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "Angebot Opel Astra.pdf"
    assert attachment.get_payload(decode=True) == PDF  # byte-identical

    # the conversation: the inquiry, the customer's photo, the answer with its PDF, sent
    page.reload()
    cards = page.locator("ol.messages > li")
    assert cards.count() == 3
    answer = cards.nth(2)
    assert "Antwort über die Anfrageseite" in answer.inner_text()
    assert "gesendet" in answer.inner_text()
    assert answer.get_by_role("link", name="Angebot Opel Astra.pdf").is_visible()
    with page.expect_download() as download:
        answer.get_by_role("link", name="Angebot Opel Astra.pdf").click()
    assert Path(download.value.path()).read_bytes() == PDF
    screenshot(page, "lead-answer")
    _section_shot(page, "lead-conversation")  # the figure in docs/web-ui.md
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # on a phone the answer starts folded (a short page); "Antworten" in the bar unfolds it
    # and puts the cursor into the text
    send = page.get_by_role("button", name="An den Kunden senden")
    assert not send.is_visible()
    page.locator("#action-answer").click()
    assert send.is_visible()
    expect(page.locator("#answer-body")).to_be_focused()
    screenshot(page, "lead-answer-phone")
    _section_shot(page, "lead-conversation-phone")


def _section_shot(page: Any, name: str) -> None:  # noqa: F811
    """The conversation and the answer form alone (the docs show them, not the whole page)."""
    target = ARTIFACTS / "screenshots" / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.locator("#conversation").screenshot(path=str(target))
