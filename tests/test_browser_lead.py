"""The lead page in a real browser (Chromium via Playwright): a supervisor's day with one lead,
and a hostile mail that must stay inert (no dialog, no request to another host)."""

from __future__ import annotations

from datetime import date, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from mailgate.models import Lead

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .distribution_helpers import form_mail, ingest, setup, team_toml
from .webui_helpers import ensure_user

CHEF, BEN = "chef@autohaus.example", "ben@autohaus.example"


def _team(live: LiveWeb) -> None:
    setup(live.factory, team_toml())
    ensure_user(live.factory, CHEF, "supervisor", name="Chris Chef")
    ensure_user(live.factory, BEN, "salesperson", name="Ben Berger")
    ensure_user(live.factory, "ada@autohaus.example", "admin", name="Ada Admin")


def test_open_log_a_call_reassign_and_close(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    _team(live_web)
    ingest(live_web.factory, form_mail(1, name="Fritz Fröhlich", message="Noch zu haben?"))
    log_in(page, live_web.url, CHEF)
    page.goto(live_web.url + "/leads")
    page.get_by_role("link", name="Fritz Fröhlich").click()
    assert page.get_by_role("heading", name="Anstehende Eskalation").is_visible()
    assert page.locator("#lead-status").inner_text() == "zugewiesen"

    # A phone call counts as the answer: the badge says "ok" and the status "contacted".
    # The action bar opens the contact dialog; its first field has the focus.
    page.locator("#action-contact").click()
    contact = page.locator("#form-contact")
    contact.wait_for()
    expect(contact.locator("select#channel")).to_be_focused()
    contact.get_by_label("Wie").select_option(label="Telefonat")
    contact.get_by_label("Notiz (optional)").fill("Probefahrt am Samstag")
    contact.get_by_role("button", name="Kontakt eintragen").click()
    assert page.get_by_role("status").first.inner_text() == (
        "Kontakt eingetragen: Die Anfrage gilt als beantwortet."
    )
    assert page.locator("#due-state").inner_text() == "ok"
    assert page.locator("#lead-status").inner_text() == "kontaktiert"
    logged = "Kontakt erfasst: Telefonat; Notiz: Probefahrt am Samstag"  # the protocol in German
    assert page.get_by_role("cell", name=logged).is_visible()

    # Reassign to Ben (in the supervisor's team, so the page stays open for him).
    page.locator("#action-forward").click()
    reassign = page.locator("#form-reassign")
    reassign.get_by_label("An", exact=True).select_option(label=f"Ben Berger <{BEN}>")
    reassign.get_by_role("button", name="Neu zuweisen").click()
    assert page.get_by_role("status").first.inner_text() == "Anfrage an Ben Berger übergeben."
    assert BEN in page.locator("#assignee").inner_text()
    screenshot(page, "lead-detail")

    # Close with a completion reason; then the lead offers only "reopen".
    page.locator("#action-close").click()
    close = page.locator("#form-close")
    close.get_by_label("Abschlussgrund").select_option(label="Fahrzeug verkauft")
    close.get_by_role("button", name="Anfrage abschließen").click()
    assert (
        page.get_by_role("status").first.inner_text() == "Anfrage abgeschlossen: Fahrzeug verkauft."
    )
    assert page.locator("#lead-status").inner_text() == "abgeschlossen"
    assert page.get_by_role("button", name="Anfrage wieder öffnen").is_visible()
    assert page.get_by_role("cell", name="Grund: Fahrzeug verkauft", exact=True).is_visible()
    with live_web.factory() as session:
        lead = session.scalars(select(Lead)).one()
        assert (lead.status, lead.close_reason) == ("closed", "sold")
    # On a phone: one column, the tables become cards, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.get_by_role("button", name="Anfrage wieder öffnen").is_visible()
    # the protocol starts folded there (a short page); one tap opens it
    screenshot(page, "lead-detail-phone")
    reason = page.locator("#protocol td", has_text="Grund: Fahrzeug verkauft")
    assert not reason.is_visible()
    page.locator("#protocol > summary").click()
    assert page.locator("#protocol").evaluate("d => d.open")
    reason.wait_for()


def test_a_refused_action_reopens_its_dialog_with_the_reason(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    """A resubmission in the past is refused: the page comes back with the same dialog open
    as a modal, the reason inside it and the focus on its first field."""
    _team(live_web)
    ingest(live_web.factory, form_mail(4, name="Rita Rück", message="Bitte später melden"))
    log_in(page, live_web.url, CHEF)
    page.goto(live_web.url + "/leads")
    page.get_by_role("link", name="Rita Rück").click()
    page.locator("#action-followup").click()
    dialog = page.locator("#dlg-followup")
    dialog.wait_for()
    assert dialog.get_by_role("heading", name="Wiedervorlage und Fälligkeit").is_visible()
    when = dialog.locator("#resubmission-when")
    when.fill(f"{date.today() - timedelta(days=1):%Y-%m-%d}T09:30")
    dialog.locator("#resubmission-submit").click()
    page.wait_for_load_state()
    reason = "Nicht ausgeführt: Das Wiedervorlagedatum muss in der Zukunft liegen."
    expect(dialog.locator("#resubmission-when")).to_be_focused()
    assert dialog.is_visible() and reason in dialog.locator(".alert-danger").inner_text()
    assert dialog.get_attribute("aria-modal") == "true"  # a modal again, not a section
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.locator("#lead-status").inner_text() == "zugewiesen"  # nothing changed


def test_a_hostile_lead_stays_inert(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    _team(live_web)
    script, img = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    msg = EmailMessage()
    msg["From"] = f'"Eve {img}" <eve@kunden.example>'
    msg["To"] = "leads@autohaus.example"
    msg["Subject"] = f"Anfrage {script}"
    msg["Message-ID"] = "<evil-1@kunden.example>"
    msg.set_content(f"Name: Eve {img}\nE-Mail: eve@kunden.example\nNachricht: {script} {img}")
    msg.add_alternative(
        f"<p>Hallo</p>{script}{img}<img src='https://tracker.example/pixel.gif'>"
        "<link rel=stylesheet href='https://fonts.example/x.css'>"
        "<iframe src='https://evil.example/'></iframe>",
        subtype="html",
    )
    ingest(live_web.factory, msg.as_bytes(policy=policy.SMTP))
    with live_web.factory() as session:
        lead_id = session.scalar(select(Lead.id))
    dialogs: list[str] = []
    requests: list[str] = []
    blocked: dict[str, str] = {}
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: requests.append(request.url))
    # Chromium reports a CSP-blocked load as a request that fails with "csp": it never left.
    page.on("requestfailed", lambda request: blocked.update({request.url: request.failure}))
    log_in(page, live_web.url, "ada@autohaus.example")
    page.goto(f"{live_web.url}/leads/{lead_id}")
    page.wait_for_load_state("networkidle")
    frame = page.frame_locator("iframe.mail-html")
    assert frame.locator("p").inner_text() == "Hallo"  # the HTML part is shown, in its sandbox
    assert page.get_by_role("heading", name="Original-E-Mail").is_visible()
    page.goto(f"{live_web.url}/inbound")
    page.wait_for_load_state("networkidle")
    assert dialogs == []
    foreign = [url for url in requests if not url.startswith(live_web.url)]
    left = [url for url in foreign if blocked.get(url) != "csp"]
    assert left == [], (left, blocked)
    # <img src=x> points at our own host; the frame's CSP (img-src data: cid:) blocks it too.
    relative = [url for url in requests if url.endswith("/x")]
    assert all(blocked.get(url) == "csp" for url in relative), (relative, blocked)
    assert "https://evil.example/" not in requests  # the nested frame neither
    assert any(url.endswith(f"/leads/{lead_id}/original.html") for url in requests)


def test_move_a_lead_up_the_sales_ladder(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    """Contacted → test drive → offer, then closed as sold: the ladder follows, in words."""
    _team(live_web)
    ingest(live_web.factory, form_mail(2, name="Greta Grün", message="Probefahrt möglich?"))
    log_in(page, live_web.url, CHEF)
    page.goto(live_web.url + "/leads")
    page.get_by_role("link", name="Greta Grün").click()
    current = page.locator("#sales-ladder [aria-current=step] .rung-name")
    assert current.inner_text() == "neu"
    stage = page.locator("#form-stage")
    assert stage.get_by_label("Neuer Status").input_value() == "contacted"  # the next step
    for label, status in (("Probefahrt", "Probefahrt"), ("Angebot", "Angebot")):
        page.locator("#action-status").click()
        stage.get_by_label("Neuer Status").select_option(label=label)
        stage.get_by_role("button", name="Status setzen").click()
        assert page.get_by_role("status").first.inner_text() == f"Status gesetzt: {status}."
        assert current.inner_text() == status
        assert page.locator("#lead-status").inner_text() == status
    assert page.locator("#due-state").inner_text() == "ok"  # a test drive answered the lead
    done = page.locator("#sales-ladder li.rung-done .rung-name").all_inner_texts()
    assert done == ["neu", "kontaktiert", "Probefahrt"]
    assert page.get_by_role("cell", name="Status Probefahrt → Angebot").is_visible()
    page.locator("#action-close").click()
    close = page.locator("#form-close")
    close.get_by_label("Abschlussgrund").select_option(label="Fahrzeug verkauft")
    close.get_by_role("button", name="Anfrage abschließen").click()
    assert current.inner_text() == "abgeschlossen"
    screenshot(page, "lead-sales-ladder")
    page.goto(live_web.url + "/leads?status=closed")
    assert page.get_by_role("link", name="Greta Grün").is_visible()


def test_enter_a_lead_by_hand_and_merge_the_duplicate(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    """A walk-in who wrote before: the duplicate check offers the known customer, the user
    ticks what to take over, and the new lead is his."""
    _team(live_web)
    ingest(live_web.factory, form_mail(3, name="Hanna Held", email="hanna.held@kunden.example"))
    log_in(page, live_web.url, CHEF)
    page.goto(live_web.url + "/leads")
    page.get_by_role("link", name="Anfrage von Hand erfassen").click()
    form = page.locator("#form-new-lead")
    form.get_by_label("Anrede").select_option(label="Frau")
    form.get_by_label("Vorname").fill("Hanna")
    form.get_by_label("Nachname").fill("Held")
    form.get_by_label("E-Mail", exact=True).fill("hanna.held@kunden.example")
    form.get_by_label("Telefon").fill("0170 2223334")
    form.get_by_label("Straße").fill("Lindenweg 3")
    form.get_by_label("Probefahrt").check()
    form.get_by_label("Lead-Herkunft", exact=True).fill("Telefon")
    form.get_by_role("button", name="Anfrage anlegen").click()

    assert page.locator("h1").inner_text() == "Ist das ein bestehender Kunde?"
    duplicate = page.locator("form.duplicate").first
    assert "gefunden über: E-Mail-Adresse" in duplicate.locator("caption").inner_text()
    duplicate.get_by_label("Telefon übernehmen").uncheck()  # keep the stored phone number
    duplicate.get_by_role("button", name="Ja: angehakte Felder übernehmen").click()

    assert page.get_by_role("status").first.inner_text().startswith("Anfrage ")
    assert "Hanna Held" in page.locator("h1").inner_text()
    taken = page.get_by_role("cell", name="übernommene Felder: Anrede, Straße")
    assert taken.is_visible()  # the protocol names the fields in German
    screenshot(page, "lead-manual-duplicate")


def test_without_javascript_the_dialogs_are_sections(browser: Any, live_web: LiveWeb) -> None:  # noqa: F811
    """No script at all: the action bar's links show their dialog in place (CSS :target), the
    form posts to the same endpoint, and a refused value shows its dialog again with the
    reason."""
    _team(live_web)
    ingest(live_web.factory, form_mail(5, name="Olga Ohnescript", message="Rückruf bitte"))
    context = browser.new_context(locale="de-DE", java_script_enabled=False)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        log_in(tab, live_web.url, CHEF)
        tab.goto(live_web.url + "/leads")
        tab.get_by_role("link", name="Olga Ohnescript").click()
        contact = tab.locator("#form-contact")
        assert not contact.is_visible()
        tab.locator("#action-contact").click()
        assert tab.url.endswith("#dlg-contact") and contact.is_visible()
        contact.get_by_label("Wie").select_option(label="Telefonat")
        contact.get_by_role("button", name="Kontakt eintragen").click()
        assert tab.locator("#lead-status").inner_text() == "kontaktiert"
        assert not contact.is_visible()  # done: the dialog is closed again
        tab.locator("#action-status").click()
        qualification = tab.locator("#form-qualification")
        assert qualification.is_visible()
        qualification.get_by_role("button", name="Einstufung setzen").click()  # empty choice
        # the browser's own check ("required") stops an empty choice; a scripted or old
        # browser that posts it anyway is refused by the server (test_webui_lead_actions)
        assert qualification.locator("select#value").evaluate("s => !s.checkValidity()")
        tab.locator("#action-followup").click()
        yesterday = f"{date.today() - timedelta(days=1):%Y-%m-%d}T09:30"
        tab.locator("#resubmission-when").fill(yesterday)
        with tab.expect_navigation():  # the post, its redirect and the page it lands on
            tab.locator("#resubmission-submit").click()
        dialog = tab.locator("#dlg-followup")
        dialog.wait_for(state="visible")
        assert "#" not in tab.url  # shown by the server, not the link
        reason = "Das Wiedervorlagedatum muss in der Zukunft liegen."
        assert reason in dialog.locator(".alert-danger").inner_text()
    finally:
        context.close()
