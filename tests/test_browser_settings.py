"""Settings in a real browser: working hours change the live timeline preview; add a user."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mailgate import db
from mailgate.dealer_settings import stored_document
from mailgate.models import User

from .browser import LiveWeb, browser, live_web, log_in, page, screenshot  # noqa: F401
from .webui_helpers import ensure_user

ADMIN = "admin@autohaus.example"
DAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")


def stage1(tab: Any) -> str:
    return tab.locator('#timeline [data-key="stage1_at"]').inner_text()


def shift(tab: Any, day: str, n: int, which: str) -> Any:
    """The time input of ``day``'s ``n``-th opening time (1-based), ``which`` = von / bis."""
    return tab.get_by_label(f"{day}, Öffnungszeit {n}: {which}", exact=True)


def test_changing_hours_changes_the_timeline_preview(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    ensure_user(live_web.factory, ADMIN, "admin", name="Ada Admin")
    log_in(page, live_web.url, ADMIN)
    page.get_by_role("link", name="Einstellungen").click()
    page.get_by_role("link", name="Öffnungszeiten").click()
    for day in DAYS:  # open round the clock: stage 1 is four hours from now
        shift(page, day, 1, "von").fill("00:00")
        shift(page, day, 1, "bis").fill("00:00")  # 00:00 at the end: midnight
    page.get_by_role("button", name="Speichern").click()
    assert page.get_by_role("status").inner_text() == "Gespeichert."
    saved = stage1(page)
    assert saved
    # Typing (unsaved) narrower hours: the preview asks the server and changes.
    for day in DAYS:
        shift(page, day, 1, "von").fill("10:00")
        shift(page, day, 1, "bis").fill("11:00")
    page.wait_for_function(
        "old => document.querySelector('#timeline [data-key=\"stage1_at\"]').textContent !== old",
        arg=saved,
    )
    assert stage1(page) != saved
    # Overlapping shifts show the problem instead of times.
    shift(page, "Montag", 2, "von").fill("10:30")
    shift(page, "Montag", 2, "bis").fill("12:00")
    page.locator("#timeline-error").wait_for(state="visible")
    assert "überschneiden sich" in page.locator("#timeline-error").inner_text()
    # A third shift: the add button clones a row with the next free names.
    shift(page, "Montag", 2, "von").fill("14:00")
    shift(page, "Montag", 2, "bis").fill("15:00")
    page.get_by_role("button", name="Öffnungszeit hinzufügen (Montag)").click()
    shift(page, "Montag", 3, "von").fill("16:00")
    shift(page, "Montag", 3, "bis").fill("17:00")
    page.get_by_role("button", name="Montag: Öffnungszeit 2 entfernen").click()
    page.get_by_role("button", name="Speichern").click()
    assert page.get_by_role("status").inner_text() == "Gespeichert."
    assert stage1(page) != saved
    with db.session_scope(live_web.factory) as session:
        hours = stored_document(session)["hours"]
    assert hours["mon"] == ["10:00-11:00", "16:00-17:00"] and hours["sun"] == ["10:00-11:00"]
    screenshot(page, "settings")


def test_template_editor_live_preview(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    ensure_user(live_web.factory, ADMIN, "admin", name="Ada Admin")
    log_in(page, live_web.url, ADMIN)
    page.goto(live_web.url + "/settings/templates")
    page.get_by_role(
        "link", name="Eskalation Stufe 1: überfällig: Fassung Deutsch bearbeiten"
    ).click()
    assert page.get_by_role("heading", name="Verfügbare Variablen").is_visible()
    page.get_by_label("Betreff").fill("Überfällig: {{ customer.name }} <b>wartet</b>")
    subject = page.locator("#preview-subject")
    subject.filter(has_text="Überfällig: Erika Musterfrau <b>wartet</b>").wait_for()  # escaped
    page.get_by_label("Textfassung").fill("{{ ''.__class__.__mro__ }}")
    problems = page.locator("#template-problems")
    problems.wait_for()
    assert "Nicht erlaubt" in problems.inner_text()
    screenshot(page, "settings-template")


def test_add_a_user(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    ensure_user(live_web.factory, ADMIN, "admin", name="Ada Admin")
    log_in(page, live_web.url, ADMIN)
    page.goto(live_web.url + "/settings/users")
    page.get_by_role("link", name="Benutzer hinzufügen").click()
    page.get_by_label("E-Mail-Adresse").fill("bert@autohaus.example")
    page.get_by_label("Name", exact=True).fill("Bert Berger")
    page.get_by_label("Rolle").select_option("salesperson")
    page.get_by_label("Teamleitung").select_option(label="Ada Admin")
    page.get_by_label("Anfangspasswort").fill("Bert-sein-Passwort-9")
    page.get_by_role("button", name="Benutzer anlegen").click()
    assert page.get_by_role("status").inner_text() == "Benutzer angelegt."
    assert page.get_by_role("heading", name="Bert Berger").is_visible()
    screenshot(page, "settings-user")
    page.get_by_role("link", name="Benutzer", exact=True).click()
    assert page.get_by_role("link", name="Bert Berger").is_visible()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the list becomes cards
    assert page.get_by_role("link", name="Bert Berger").is_visible()
    screenshot(page, "settings-users-phone")
    with db.session_scope(live_web.factory) as session:
        bert = session.scalar(select(User).where(User.email == "bert@autohaus.example"))
        assert bert is not None and bert.active and bert.supervisor_email == ADMIN
        assert bert.password_hash


def test_holiday_region_picker_and_days_off(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    ensure_user(live_web.factory, ADMIN, "admin", name="Ada Admin")
    log_in(page, live_web.url, ADMIN)
    page.goto(live_web.url + "/settings/holidays?year=2026")
    page.get_by_label("Land").select_option("AT")  # the region list follows without saving
    page.get_by_label("Region").locator("option", has_text="Tirol").wait_for(state="attached")
    page.get_by_label("Evangelische Feiertage").wait_for()  # Austria's holiday kinds, in words
    assert page.get_by_label("Gesetzliche Feiertage").is_checked()
    page.get_by_label("Land").select_option("DE")
    page.get_by_label("Region").locator("option", has_text="Bayern (BY)").wait_for(state="attached")
    page.get_by_label("Region").select_option("BY")
    page.get_by_label("Katholische Feiertage").check()
    page.get_by_role("button", name="Speichern").click()
    assert page.get_by_role("status").inner_text() == "Gespeichert."
    page.goto(live_web.url + "/settings/holidays?year=2026")
    assert page.get_by_role("cell", name="Heilige Drei Könige").is_visible()
    assert page.get_by_role("cell", name="Mariä Himmelfahrt").is_visible()  # a Catholic one
    # a company closure from the date pickers; on a phone the rows fit the width
    page.get_by_label("Neue Schließzeit: erster Tag").fill("2026-12-28")
    page.get_by_label("Neue Schließzeit: letzter Tag").fill("2026-12-30")
    page.get_by_role("button", name="Speichern").click()
    assert page.get_by_role("status").inner_text() == "Gespeichert."
    page.goto(live_web.url + "/settings/holidays?year=2026")
    assert page.get_by_role("row", name="Dienstag, 29.12.2026 Betriebsferien").is_visible()
    assert page.get_by_label("Schließzeit 1: erster Tag").input_value() == "2026-12-28"
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 1
