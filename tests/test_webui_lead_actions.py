"""Every action on the lead page through the test client: effect, protocol, message, refusal.

Dates typed into the forms are Berlin wall-clock time; the tests check the
stored UTC instant.  Both databases.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import completion
from mailgate.completion import CompletionReason
from mailgate.escalation.ladder import NEVER
from mailgate.models import Customer, Lead, OutboxMail, utcnow

from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    BEN,
    app_fixture,
    body,
    lead_row,
    new_lead,
    protocol,
    team_fixture,
)
from .webui_helpers import logged_in, post

BERLIN = ZoneInfo("Europe/Berlin")


def act(client: FlaskClient, lead_id: int, action: str, data: dict[str, object]) -> str:
    """POST an action with the page's token; follow the redirect; return the page shown."""
    response = post(client, f"/leads/{lead_id}/{action}", data, page=f"/leads/{lead_id}")
    assert response.status_code == 302, (action, response.status_code)
    return body(client, response.headers["Location"])


def flashes(page: str) -> list[str]:
    import re

    return re.findall(r'<p class="flash flash-(\w+)"[^>]*>([^<]*)</p>', page)


def prefilled(page: str) -> dict[str, str]:
    """The text inputs of a form page with their values (unescaped), as a browser sends them."""
    import html
    import re

    fields = {}
    for tag in re.findall(r"<input [^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="text"' in tag:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


def local_input(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")


def test_log_a_call_counts_as_the_answer(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    past = utcnow() - timedelta(hours=1)
    with team.begin() as session:  # overdue before the call
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(soon_at=past, overdue_at=past)
        )
    anna = logged_in(app, ANNA)
    assert 'id="due-state">überfällig' in body(anna, f"/leads/{lead_id}")
    page = act(anna, lead_id, "contact", {"channel": "phone", "note": "Probefahrt Samstag"})
    assert ("success", "Kontakt eingetragen: Die Anfrage gilt als beantwortet.") in flashes(page)
    lead = lead_row(team, lead_id)
    assert lead.status == "contacted" and lead.first_response_at is not None
    assert lead.next_due_at is None
    assert protocol(team, lead_id)[-1] == (
        ANNA,
        "contact",
        "contact logged: phone; note: Probefahrt Samstag",
    )
    assert 'id="due-state">ok' in page  # answered: no longer overdue
    assert "Nichts: Der Kunde hat eine Antwort erhalten." in page


def test_resubmission_date_is_berlin_time(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    when = datetime.now(BERLIN).replace(second=0, microsecond=0) + timedelta(days=3)
    page = act(anna, lead_id, "resubmission", {"when": local_input(when)})
    assert flashes(page)[0][0] == "success" and "Wiedervorlage für" in flashes(page)[0][1]
    lead = lead_row(team, lead_id)
    assert lead.soon_at == when.astimezone(UTC)
    assert 'id="due-state">Wiedervorlage' in page
    # A date in the past is refused and changes nothing.
    before = protocol(team, lead_id)
    page = act(anna, lead_id, "resubmission", {"when": local_input(utcnow() - timedelta(days=1))})
    assert flashes(page) == [
        ("error", "Nicht ausgeführt: Das Wiedervorlagedatum muss in der Zukunft liegen.")
    ]
    assert protocol(team, lead_id) == before
    # A missing date is a form error, shown as such.
    page = act(anna, lead_id, "resubmission", {"when": ""})
    assert flashes(page)[0][0] == "error"


def test_change_the_due_date(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{lead_id}")
    before = lead_row(team, lead_id).overdue_at
    assert before is not None
    assert f'value="{local_input(before)}"' in page  # prefilled with the current due date
    new_due = datetime.now(BERLIN).replace(second=0, microsecond=0) + timedelta(days=5)
    page = act(anna, lead_id, "due", {"when": local_input(new_due)})
    assert ("success", f"Fälligkeit auf {new_due:%d.%m.%Y %H:%M} geändert.") in flashes(page)
    assert lead_row(team, lead_id).overdue_at == new_due.astimezone(UTC)
    assert protocol(team, lead_id)[-1][1] == "due_moved"


def test_qualification_hot_and_junk(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    page = act(anna, lead_id, "qualification", {"value": "hot"})
    assert ("success", "Einstufung gesetzt: heiß.") in flashes(page)
    assert lead_row(team, lead_id).qualification == "hot"
    page = act(anna, lead_id, "qualification", {"value": "junk"})
    lead = lead_row(team, lead_id)
    assert (lead.qualification, lead.escalation_stage) == ("junk", NEVER)
    assert 'id="due-state">pausiert' in page
    assert "diese Anfrage eskaliert nie" in page
    page = act(anna, lead_id, "qualification", {"value": "lukewarm"})
    assert flashes(page)[0][0] == "error" and lead_row(team, lead_id).qualification == "junk"


def test_no_qualification_is_chosen_for_the_user(team: sessionmaker[Session], app: Flask) -> None:
    """None set: the select starts at "— bitte wählen —", and saving that is refused in
    German; the status dialog opens again with the error inside it."""
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{lead_id}")
    select_ = page.split('id="value"', 1)[1].split("</select>", 1)[0]
    first = re.search(r"<option([^>]*)>([^<]*)</option>", select_)
    assert first is not None and first.group(2) == "— bitte wählen —"
    assert 'value=""' in first.group(1)
    assert select_.count("selected") == 1 and "selected" in first.group(1)  # only the empty one
    page = act(anna, lead_id, "qualification", {"value": ""})
    error = "Qualifizierung: Bitte wählen Sie eine Qualifizierung."
    assert ("error", error) in flashes(page)
    assert lead_row(team, lead_id).qualification is None
    dialog = page.split('id="dlg-status"', 1)[0].rsplit("<div", 1)[1]
    assert "lead-dialog-open" in dialog  # reopened where the user was working
    inside = page.split('id="dlg-status-problems"', 1)[1].split("</div>", 1)[0]
    assert error in inside
    # once: the next view of the lead shows the dialog closed again
    again = body(anna, f"/leads/{lead_id}")
    assert "lead-dialog-open" not in again and "dlg-status-problems" not in again
    # set: the current value is selected and the empty choice is gone
    act(anna, lead_id, "qualification", {"value": "warm"})
    select_ = body(anna, f"/leads/{lead_id}").split('id="value"', 1)[1].split("</select>", 1)[0]
    assert "bitte wählen" not in select_
    assert re.search(r'<option selected value="warm">|<option value="warm" selected>', select_)


def test_a_refused_action_reopens_its_dialog_for_that_lead_only(
    team: sessionmaker[Session], app: Flask
) -> None:
    first, second = new_lead(team, 1, ANNA), new_lead(team, 2, ANNA)
    anna = logged_in(app, ANNA)
    past = local_input(utcnow() - timedelta(days=1))
    response = post(anna, f"/leads/{first}/resubmission", {"when": past}, page=f"/leads/{first}")
    assert response.status_code == 302
    other = body(anna, f"/leads/{second}")  # another lead: nothing opens there
    assert "lead-dialog-open" not in other
    page = body(anna, f"/leads/{first}")
    assert 'class="modal fade lead-dialog lead-dialog-open" id="dlg-followup"' in page
    assert (
        "Das Wiedervorlagedatum muss in der Zukunft liegen."
        in page.split('id="dlg-followup-problems"', 1)[1].split("</div>", 1)[0]
    )


def test_reassign_and_forward(team: sessionmaker[Session], app: Flask) -> None:
    first, second = new_lead(team, 1, ANNA), new_lead(team, 2, ANNA)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{first}")
    options = page.split('id="to"', 1)[1].split("</select>", 1)[0]
    assert BEN in options and ANNA not in options
    assert ADA not in options  # Ada cannot be assigned leads
    outbox_before = _outbox_count(team)
    response = post(
        anna, f"/leads/{first}/reassign", {"to": BEN, "reassign": "y"}, page=f"/leads/{first}"
    )
    # Given away: Anna no longer sees it, so she lands on the list with the message.
    assert response.status_code == 302 and response.headers["Location"] == "/leads"
    assert ("success", "Anfrage an Ben Berger übergeben.") in flashes(body(anna, "/leads"))
    lead = lead_row(team, first)
    assert lead.assignee is not None and lead.assignee.email == BEN
    assert (ANNA, "reassigned", f"from {ANNA} to {BEN}") in protocol(team, first)
    assert _outbox_count(team) == outbox_before + 1  # Ben is told
    assert anna.get(f"/leads/{first}").status_code == 404
    # Forwarding needs a note; with one, it travels in the protocol.
    page = act(anna, second, "reassign", {"to": BEN, "forward": "y", "note": ""})
    assert (
        "error",
        "Zum Weiterleiten bitte eine Notiz für die Kollegin oder den Kollegen eingeben.",
    ) in flashes(page)
    post(
        anna,
        f"/leads/{second}/reassign",
        {"to": BEN, "forward": "y", "note": "Kunde spricht nur Englisch"},
        page=f"/leads/{second}",
    )
    assert (ANNA, "forwarded", f"from {ANNA} to {BEN}; note: Kunde spricht nur Englisch") in (
        protocol(team, second)
    )
    # A target outside the offered list is refused by the form.
    ben = logged_in(app, BEN)
    page = act(ben, second, "reassign", {"to": ADA, "reassign": "y"})
    assert flashes(page)[0][0] == "error"
    assert lead_row(team, second).assignee.email == BEN  # type: ignore[union-attr]


def _outbox_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return len(session.scalars(select(OutboxMail.id)).all())


def test_close_with_a_reason_and_reopen(
    team: sessionmaker[Session], app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings page for reasons is another area's; the dealer's list is stood in here.
    reasons = (
        CompletionReason("sold", "Verkauft!", "won"),
        CompletionReason("old", "Alter Grund", hidden=True),
    )
    monkeypatch.setattr(completion, "DEFAULT_REASONS", reasons)
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{lead_id}")
    reasons = page.split('id="reason"', 1)[1].split("</select>", 1)[0]
    assert "Verkauft!" in reasons and "Alter Grund" not in reasons
    page = act(anna, lead_id, "close", {"reason": "old"})  # hidden: refused
    assert flashes(page)[0][0] == "error" and lead_row(team, lead_id).status == "assigned"
    page = act(anna, lead_id, "close", {"reason": "sold"})
    assert ("success", "Anfrage abgeschlossen: Verkauft!.") in flashes(page)
    lead = lead_row(team, lead_id)
    assert (lead.status, lead.close_reason) == ("closed", "sold") and lead.closed_at
    assert 'id="due-state"' not in page and "(Verkauft!)" in page
    assert f'action="/leads/{lead_id}/contact"' not in page  # closed: no more actions
    assert f'action="/leads/{lead_id}/reopen"' in page
    # Closed leads refuse the open-lead actions even when posted directly.
    page = act(anna, lead_id, "contact", {"channel": "phone"})
    assert flashes(page) == [("error", "Nicht ausgeführt: Die Anfrage ist abgeschlossen.")]
    page = act(anna, lead_id, "reopen", {})
    assert ("success", "Anfrage wieder geöffnet.") in flashes(page)
    lead = lead_row(team, lead_id)
    assert (lead.status, lead.close_reason, lead.closed_at) == ("assigned", None, None)
    assert lead.overdue_at is not None and lead.overdue_at > utcnow()  # the clock restarted
    assert protocol(team, lead_id)[-1][:2] == (ANNA, "reopened")


def test_edit_customer_and_vehicle(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{lead_id}/edit")
    assert 'value="person1@kunden.example"' in page and 'value="Opel"' in page
    assert re.search(r'<label [^>]*for="customer_phone"[^>]*>Telefon</label>', page)
    # As a browser submits it: every prefilled field, three changed, two filled in.
    form = prefilled(page) | {"customer_phone": "0170 5550001", "vehicle_model": "Corsa"}
    form |= {"vehicle_price": "12.990", "trade_in_make": "Fiat", "customer_city": "Ulm"}
    assert form["customer_name"] == "Kundin Nummer1" and form["vehicle_make"] == "Opel"
    response = post(anna, f"/leads/{lead_id}/edit", form)
    assert response.status_code == 302
    page = body(anna, f"/leads/{lead_id}")
    assert ("success", "Änderungen gespeichert (5).") in flashes(page)
    lead = lead_row(team, lead_id)
    assert lead.vehicle["model"] == "Corsa" and lead.vehicle["price"] == 12990
    assert lead.trade_in == {"make": "Fiat"}
    with team() as session:
        customer = session.get(Customer, lead.customer_id)
        assert customer is not None
        assert (customer.phone, customer.phone_e164) == ("0170 5550001", "+491705550001")
    # the last line but her first look at the lead page after saving ("opened", seed 000)
    actor, action, detail = [line for line in protocol(team, lead_id) if line[1] != "opened"][-1]
    assert (actor, action) == (ANNA, "edited")
    assert "customer phone: – -> 0170 5550001" in detail and "customer city: – -> Ulm" in detail
    assert "vehicle model: Astra -> Corsa" in detail and "trade-in make: – -> Fiat" in detail
    assert '<td data-label="Was">Daten korrigiert</td>' in page
    # Saving the same values again changes nothing and writes nothing.
    post(anna, f"/leads/{lead_id}/edit", form)
    assert ("success", "Es wurde nichts geändert.") in flashes(body(anna, f"/leads/{lead_id}"))
    assert [line for line in protocol(team, lead_id) if line[1] != "opened"][-1][2] == detail
    # A bad e-mail address or price: the form again, with the reason, nothing saved.
    bad = post(anna, f"/leads/{lead_id}/edit", form | {"vehicle_price": "billig"})
    assert bad.status_code == 400
    assert "Nicht gespeichert: billig ist keine Zahl." in bad.get_data(True)
    assert lead_row(team, lead_id).vehicle["price"] == 12990


def test_closed_leads_cannot_be_edited(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    with team.begin() as session:
        session.execute(update(Lead).where(Lead.id == lead_id).values(status="closed"))
    anna = logged_in(app, ANNA)
    response = anna.get(f"/leads/{lead_id}/edit")
    assert response.status_code == 302
    assert ("error", "Nur offene Anfragen können bearbeitet werden.") in flashes(
        body(anna, f"/leads/{lead_id}")
    )


def test_delete_is_for_admins_and_open_leads(team: sessionmaker[Session], app: Flask) -> None:
    lead_id = new_lead(team, 1, ANNA)
    anna, ada = logged_in(app, ANNA), logged_in(app, ADA)
    refused = post(anna, f"/leads/{lead_id}/delete", {"confirm": "y"}, page=f"/leads/{lead_id}")
    assert refused.status_code == 403 and lead_row(team, lead_id).status == "assigned"
    page = body(ada, f"/leads/{lead_id}")
    assert f'action="/leads/{lead_id}/delete"' in page
    unconfirmed = act(ada, lead_id, "delete", {})
    assert flashes(unconfirmed)[0][0] == "error" and lead_row(team, lead_id).status == "assigned"
    response = post(ada, f"/leads/{lead_id}/delete", {"confirm": "y"}, page=f"/leads/{lead_id}")
    assert response.status_code == 302
    assert lead_row(team, lead_id).status == "deleted"
    assert protocol(team, lead_id)[-1] == (ADA, "deleted", "deleted (was assigned)")
    page = body(ada, response.headers["Location"])
    assert ("success", f"Anfrage {lead_id} gelöscht.") in flashes(page)
    # Deleted: no delete button, and a second delete is refused.
    assert f'action="/leads/{lead_id}/delete"' not in body(ada, f"/leads/{lead_id}")
    page = act(ada, lead_id, "delete", {"confirm": "y"})
    assert flashes(page)[0][0] == "error"


def test_closing_and_handing_on_need_an_explicit_choice(
    team: sessionmaker[Session], app: Flask
) -> None:
    """The close reason and the colleague start at "— bitte wählen —" (one stray click closes
    or hands on nothing); an empty choice is refused in German and changes nothing."""
    lead_id = new_lead(team, 1, ANNA)
    anna = logged_in(app, ANNA)
    page = body(anna, f"/leads/{lead_id}")
    for select_id in ("reason", "to"):
        options = page.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
        first = re.search(r"<option([^>]*)>([^<]*)</option>", options)
        assert first is not None and first.group(2) == "— bitte wählen —", select_id
        chosen = re.findall(r'<option[^>]*\bselected\b[^>]*value="([^"]*)"', options)
        chosen += re.findall(r'<option[^>]*value="([^"]*)"[^>]*\bselected\b', options)
        assert set(chosen) <= {""}, (select_id, chosen)  # the browser shows the first one
    before = protocol(team, lead_id)
    page = act(anna, lead_id, "close", {"reason": ""})
    assert ("error", "Abschlussgrund: Bitte wählen Sie, wie die Anfrage ausgegangen ist.") in (
        flashes(page)
    )
    assert "lead-dialog-open" in page.split('id="dlg-close"', 1)[0].rsplit("<div", 1)[1]
    page = act(anna, lead_id, "reassign", {"to": "", "reassign": "y"})
    assert ("error", "An: Bitte wählen Sie, an wen die Anfrage geht.") in flashes(page)
    assert protocol(team, lead_id) == before
    assert lead_row(team, lead_id).status == "assigned"
