"""Settings pages (admin only): access, CSRF, validation next to the field, saves round-trip.

Every page saves through ``apply_document`` (the import's validation); the
tests check the stored result through ``export_settings``, as an admin would
see it in the download.
"""

from __future__ import annotations

import io
import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import MultiDict

from mailgate import db
from mailgate.base_url import set_base_url
from mailgate.dealer_settings import export_settings, load_dealer_config
from mailgate.models import OutboxMail, User

from .webui_helpers import csrf_token, ensure_user, logged_in, post, web_app

ADMIN, ANNA, CHEF = "admin@autohaus.example", "anna@autohaus.example", "chef@autohaus.example"
PAGES = (
    "/settings/",
    "/settings/hours",
    "/settings/holidays",
    "/settings/escalation",
    "/settings/distribution",
    "/settings/users",
    "/settings/users/new",
    "/settings/mailboxes",
    "/settings/mailboxes/new",
    "/settings/reasons",
    "/settings/transfer",
    "/settings/templates",
    "/settings/templates/de/notification",
)


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin")
    ensure_user(dealer, ANNA, "salesperson", supervisor_email=CHEF)
    ensure_user(dealer, CHEF, "supervisor")
    return web_app(dealer)


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    return logged_in(app, ADMIN)


def duration_pair(name: str, hours: str, minutes: str) -> dict[str, str]:
    """A duration as the page posts it: ``<name>-hours`` and ``<name>-minutes``."""
    return {f"{name}-hours": hours, f"{name}-minutes": minutes}


def exported(factory: sessionmaker[Session]) -> dict:
    with db.session_scope(factory) as session:
        return tomllib.loads(export_settings(session))


def errors_of(html: str, field_id: str) -> str:
    """The error list tied to an input (``<ul class="errors" id="<field>-errors">``)."""
    match = re.search(rf'<ul class="errors" id="{field_id}-errors">(.*?)</ul>', html, re.S)
    return match.group(1) if match else ""


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("who", [ANNA, CHEF])
def test_non_admins_get_403_on_get_and_post(app: Flask, page: str, who: str) -> None:
    client = logged_in(app, who)
    assert client.get(page).status_code == 403
    token = post(client, "/account", {}, page="/account")  # any page with a token: the session's
    assert token.status_code in (200, 302)
    response = client.post(page, data={"csrf_token": _session_token(client)})
    assert response.status_code in (403, 405)


def _session_token(client: FlaskClient) -> str:
    html = client.get("/account").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_non_admin_post_actions_are_403(app: Flask, dealer: sessionmaker[Session]) -> None:
    client = logged_in(app, ANNA)
    token = _session_token(client)
    for path in ("/settings/mailboxes/box/fetch", "/settings/mailboxes/box/delete"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403
    assert client.get("/settings/export.toml").status_code == 403
    assert client.get("/settings/preview.json").status_code == 403


def test_logged_out_is_sent_to_login(app: Flask) -> None:
    response = app.test_client().get("/settings/hours")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("page", PAGES)
def test_admin_sees_every_page(admin: FlaskClient, page: str) -> None:
    response = admin.get(page)
    assert response.status_code == 200, page
    assert 'name="csrf_token"' in response.get_data(as_text=True) or page.endswith("/users")


def test_post_without_csrf_token_is_refused_and_saves_nothing(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    response = admin.post("/settings/", data={"from_name": "Ohne Token", "timezone": "UTC"})
    assert response.status_code == 400
    assert exported(dealer)["dealer"]["from_name"] == "Autohaus Beispiel Verkauf"


def general_form(**changes: object) -> dict[str, object]:
    data = {
        "from_name": "Autohaus Beispiel Verkauf",
        "send_mails": "y",
        "unassigned_notice_to": "zentrale@autohaus.example",
        "trade_in_cc": "",
        "reply_mode": "relay",
        "language": "de",
        "timezone": "Europe/Berlin",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_general_saves_and_round_trips(admin: FlaskClient, dealer: sessionmaker[Session]) -> None:
    response = post(
        admin,
        "/settings/",
        general_form(
            from_name="Autohaus Beispiel – Team",
            send_mails=None,
            trade_in_cc="gutachter@autohaus.example",
            reply_mode="cc",
            timezone="Europe/Vienna",
        ),
    )
    assert response.status_code == 302
    doc = exported(dealer)
    assert doc["dealer"]["from_name"] == "Autohaus Beispiel – Team"
    assert doc["dealer"]["send_mails"] is False
    assert doc["dealer"]["reply_mode"] == "cc"
    assert doc["dealer"]["timezone"] == "Europe/Vienna"
    assert doc["distribution"]["trade_in_cc"] == "gutachter@autohaus.example"
    page = admin.get("/settings/").get_data(as_text=True)
    assert 'value="Autohaus Beispiel – Team"' in page


def test_general_error_is_next_to_the_field_and_nothing_saved(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    response = post(
        admin,
        "/settings/",
        general_form(from_name="Geändert", unassigned_notice_to="keine-adresse"),
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "keine-adresse" in errors_of(html, "unassigned_notice_to")
    assert "Das ist keine E-Mail-Adresse." in errors_of(html, "unassigned_notice_to")
    assert 'aria-describedby="unassigned_notice_to-hint unassigned_notice_to-errors"' in html
    doc = exported(dealer)
    assert doc["dealer"]["from_name"] == "Autohaus Beispiel Verkauf"
    assert doc["dealer"]["unassigned_notice_to"] == "zentrale@autohaus.example"


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def shift_form(**days: list[tuple[str, str]]) -> dict[str, str]:
    """The hours page's time inputs: two rows per day (as without JavaScript), filled from
    ``days`` (more rows when a day has more shifts)."""
    form = {}
    for day in DAYS:
        rows = days.get(day, [])
        for n, (start, end) in enumerate([*rows, *[("", "")] * max(0, 2 - len(rows))]):
            form[f"{day}-{n}-start"], form[f"{day}-{n}-end"] = start, end
    return form


def test_hours_split_shifts_round_trip(admin: FlaskClient, dealer: sessionmaker[Session]) -> None:
    form = shift_form(mon=[("13:00", "18:00"), ("08:00", "12:00")], tue=[("08:00", "18:00")])
    assert post(admin, "/settings/hours", form).status_code == 302
    hours = exported(dealer)["hours"]
    assert hours["mon"] == ["08:00-12:00", "13:00-18:00"]  # sorted
    assert hours["tue"] == ["08:00-18:00"]
    assert hours["sun"] == []
    page = admin.get("/settings/hours").get_data(as_text=True)
    assert 'name="mon-1-start" value="13:00"' in page and 'type="time"' in page
    assert 'name="mon-2-start" value=""' in page  # a spare row for a third shift


def test_hours_error_next_to_the_day_and_nothing_saved(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    form = shift_form(mon=[("08:00", "12:00")], tue=[("18:00", "08:00")])
    response = post(admin, "/settings/hours", form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "18:00–08:00 endet, bevor sie beginnt" in errors_of(html, "tue")
    assert errors_of(html, "mon") == ""
    assert 'name="tue-0-start" value="18:00"' in html  # what was typed stays in the inputs
    assert exported(dealer)["hours"]["mon"] == []


def test_preview_reflects_changed_hours(admin: FlaskClient) -> None:
    """The same lead escalates later when the shop opens fewer hours (unsaved inputs)."""
    long_day = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    short = {d: "10:00-11:00" for d in long_day}
    args = {"stage1": "4h", "reminder_before": "1h"}
    wide = admin.get("/settings/preview.json", query_string={**long_day, **args}).get_json()
    narrow = admin.get("/settings/preview.json", query_string={**short, **args}).get_json()
    assert "error" not in wide and "error" not in narrow
    assert wide["stage1_at"] != narrow["stage1_at"]
    broken = admin.get("/settings/preview.json", query_string={"mon": "25:00-26:00"}).get_json()
    assert broken["error"] == "Montag: 25:00–26:00 ist keine Uhrzeit wie 08:00."
    rows = shift_form(mon=[("08:00", "12:00"), ("11:00", "14:00")])
    overlap = admin.get("/settings/preview.json", query_string=rows).get_json()
    assert (
        overlap["error"]
        == "Montag: Die Öffnungszeiten 08:00–12:00 und 11:00–14:00 überschneiden sich."
    )


def test_preview_on_the_page_follows_saved_hours(admin: FlaskClient) -> None:
    def stage1_shown() -> str:
        html = admin.get("/settings/hours").get_data(as_text=True)
        match = re.search(r'data-key="stage1_at">([^<]*)<', html)
        assert match and match.group(1).strip()
        return match.group(1)

    all_day = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    post(admin, "/settings/hours", all_day)
    before = stage1_shown()
    post(admin, "/settings/hours", {**{d: "" for d in all_day}, "sat": "09:00-10:00"})
    assert stage1_shown() != before


def test_escalation_times_and_rules_round_trip(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    form = {
        **duration_pair("stage1", "2", ""),
        **duration_pair("reminder_before", "", "30"),
        **duration_pair("stage2", "24", "0"),
        **duration_pair("stage2_resubmission", "8", ""),
        "rule-0-source-expert": "portal:*",
        "rule-0-kind-expert": "",
        **duration_pair("rule-0-stage1", "1", "15"),
        **duration_pair("rule-1-stage1", "", ""),
    }
    data = MultiDict(form)
    data.add("rule-0-source", "oem:*")
    data.add("rule-0-source", "mobile.de")
    data.add("csrf_token", csrf_token(admin, "/settings/escalation"))
    assert admin.post("/settings/escalation", data=data).status_code == 302
    esc = exported(dealer)["escalation"]
    assert (esc["stage1"], esc["reminder_before"], esc["stage2"]) == ("2h", "30m", "24h")
    rule = {"match": {"source": ["oem:*", "mobile.de", "portal:*"]}, "stage1": "1h15m"}
    assert esc["rules"] == [rule]
    with db.session_scope(dealer) as session:  # what the escalation reads
        times = load_dealer_config(session).escalation_times("oem:nissan", "inquiry")
    assert times.stage1 == timedelta(hours=1, minutes=15) and times.stage2 == timedelta(days=1)
    page = admin.get("/settings/escalation").get_data(as_text=True)
    picked = r'value="oem:\*" id="rule-0-source-\d+" checked>\s*<label[^>]*>Alle Herstellersysteme'
    assert re.search(picked, page)
    assert re.search(r'value="mobile.de" id="rule-0-source-\d+" checked>', page)
    assert 'name="rule-0-source-expert" id="rule-0-source-expert" value="portal:*"' in page
    assert 'name="stage1-hours" value="2"' in page and 'name="stage2-hours" value="24"' in page


def test_escalation_bad_duration_is_shown_at_the_field(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    form = {"stage1": "vier Stunden", "reminder_before": "1h", "stage2": "24h"}
    form["stage2_resubmission"] = "8h"
    html = post(admin, "/settings/escalation", form).get_data(as_text=True)
    assert "vier Stunden" in errors_of(html, "stage1")  # an older script's text: judged too
    assert exported(dealer)["escalation"]["stage1"] == "4h"


def test_holidays_region_preview_and_closures(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    form = {
        "country": "DE",
        "subdivision": "BY",
        "categories": "public",
        "closures": "2026-12-24..2026-12-31",
    }
    assert post(admin, "/settings/holidays", form).status_code == 302
    assert exported(dealer)["holidays"]["subdivision"] == "BY"
    html = admin.get("/settings/holidays?year=2026").get_data(as_text=True)
    assert "Heilige Drei Könige" in html  # 6 January: Bavaria, not Berlin
    assert "Dienstag, 29.12.2026</td><td>Betriebsferien" in html  # inside the closure range
    assert "Bayern (BY)" in html
    bad = post(admin, "/settings/holidays", {**form, "closures": "Weihnachten"})
    assert "Weihnachten" in errors_of(bad.get_data(as_text=True), "closures")


def test_distribution_warnings_and_groups(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    form = {
        "mode": "groups",
        "fallback_user": ANNA,
        "pool_user": "",
        "locations": "Nord: nord@autohaus.example",
        "relay_domains": "",
        "group-0-name": "Transporter",
        "group-0-kind": "",
        "group-0-make": "VW, Ford",
    }
    response = post(admin, "/settings/distribution", form)
    assert response.status_code == 302
    doc = exported(dealer)
    assert doc["distribution"]["mode"] == "groups"
    assert doc["distribution"]["locations"] == {"Nord": ["nord@autohaus.example"]}
    assert doc["groups"] == [{"name": "Transporter", "match": {"make": ["VW", "Ford"]}}]
    html = admin.get("/settings/distribution").get_data(as_text=True)
    assert "Die Gruppe „Transporter“ hat kein Mitglied, das Leads erhält" in html  # in German
    refused = post(admin, "/settings/distribution", {**form, "mode": "pool"})
    assert "Pool-Modus braucht ein Pool-Konto" in errors_of(
        refused.get_data(as_text=True), "pool_user"
    )
    assert exported(dealer)["distribution"]["mode"] == "groups"


def user_form(**changes: object) -> dict[str, object]:
    data = {
        "name": "Anna Schmidt",
        "role": "salesperson",
        "language": "",
        "supervisor": CHEF,
        "active": "y",
        "receives_leads": "y",
        "can_be_assigned": "y",
        "locations": "",
        "perm_sales": "",  # no entry: his own, team and pool leads
        "perm_service": "",
        "perm_financing": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def user_id(factory: sessionmaker[Session], email: str) -> int:
    with db.session_scope(factory) as session:
        return session.scalar(select(User.id).where(User.email == email))


def test_user_switches_permissions_and_absence(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    path = f"/settings/users/{user_id(dealer, ANNA)}"
    form = user_form(
        receives_leads=None,
        locations="Nord",
        perm_sales="all",  # seed 003 "ALLE": every sales lead, stored as an explicit grant
        perm_service="own_location",
        **{"absence-0-from": "2026-12-01", "absence-0-until": "2026-12-05"},
        **{"absence-0-substitute": CHEF},
    )
    assert post(admin, path, form).status_code == 302
    anna = next(u for u in exported(dealer)["users"] if u["email"] == ANNA)
    assert anna["receives_leads"] is False
    assert anna["locations"] == ["Nord"]
    assert anna["permissions"] == {"sales": "all", "service": "own_location"}
    assert anna["absences"] == [{"from": "2026-12-01", "until": "2026-12-05", "substitute": CHEF}]
    bad = post(
        admin,
        path,
        user_form(**{"absence-0-from": "2026-12-05", "absence-0-until": "2026-12-01"}),
    )
    assert "until is before from" in bad.get_data(as_text=True)
    anna = next(u for u in exported(dealer)["users"] if u["email"] == ANNA)
    assert anna["absences"][0]["from"] == "2026-12-01"


def test_admin_cannot_deactivate_or_demote_himself(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    path = f"/settings/users/{user_id(dealer, ADMIN)}"
    base = user_form(name="Ada Admin", role="admin", supervisor="")
    assert post(admin, path, base).status_code == 302  # saving himself unchanged is fine
    form = {k: v for k, v in base.items() if k != "active"}
    html = post(admin, path, form).get_data(as_text=True)
    assert "sperren sich aus" in html or "lock you out" in html
    html = post(admin, path, {**base, "role": "salesperson"}).get_data(as_text=True)
    assert "Admin-Rolle" in html or "admin role" in html
    with db.session_scope(dealer) as session:
        ada = session.scalar(select(User).where(User.email == ADMIN))
        assert ada.active and ada.role == "admin"


def test_create_user_with_password_and_with_reset_link(
    app: Flask, admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    form = user_form(name="Bert Neu", supervisor="", email="bert@autohaus.example")
    form["password"] = "Anfangs-Passwort-7"
    response = post(admin, "/settings/users/new", form)
    assert response.status_code == 302
    assert "bert@autohaus.example" in [u["email"] for u in exported(dealer)["users"]]
    logged_in(app, "bert@autohaus.example", "Anfangs-Passwort-7")  # the password works
    form = user_form(name="Cora Neu", supervisor="", email="cora@autohaus.example", send_link="y")
    with db.session_scope(dealer) as session:
        set_base_url(session, "https://leads.autohaus.example")  # links need the base URL
    assert post(admin, "/settings/users/new", form).status_code == 302
    with db.session_scope(dealer) as session:
        mail = session.scalar(select(OutboxMail).where(OutboxMail.purpose == "password_reset"))
        assert mail is not None and "cora@autohaus.example" in str(mail.recipients)
    again = post(admin, "/settings/users/new", form)
    assert "existiert bereits" in errors_of(again.get_data(as_text=True), "email")
    neither = user_form(name="Dora", supervisor="", email="dora@autohaus.example")
    html = post(admin, "/settings/users/new", neither).get_data(as_text=True)
    assert errors_of(html, "password")
    assert "dora@autohaus.example" not in [u["email"] for u in exported(dealer)["users"]]


MAILBOX = {
    "name": "filiale-nord",
    "host": "imap.autohaus.example",
    "port": "993",
    "security": "ssl",
    "username": "leads",
    "password": "Geheim-123",
    "folder": "INBOX",
    "interval": "60s",
    "after_import": "flag",
    "location": "",
    "enabled": "y",
}


def test_mailbox_add_edit_password_write_only(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    assert post(admin, "/settings/mailboxes/new", MAILBOX).status_code == 302
    assert exported(dealer)["imap"][0]["password"] == "Geheim-123"
    page = admin.get("/settings/mailboxes/filiale-nord").get_data(as_text=True)
    assert "Geheim-123" not in page
    listing = admin.get("/settings/mailboxes").get_data(as_text=True)
    assert "filiale-nord" in listing and "noch nicht abgerufen" in listing
    edited = {**MAILBOX, "password": "", "folder": "Anfragen"}
    assert post(admin, "/settings/mailboxes/filiale-nord", edited).status_code == 302
    box = exported(dealer)["imap"][0]
    assert box["folder"] == "Anfragen" and box["password"] == "Geheim-123"
    both = {**edited, "password_file": "/etc/mailgate/imap.pw"}
    html = post(admin, "/settings/mailboxes/filiale-nord", both).get_data(as_text=True)
    assert "give only one of password, password_file" in html
    plain_text = {**edited, "security": "none"}
    html = post(admin, "/settings/mailboxes/filiale-nord", plain_text).get_data(as_text=True)
    assert "clear text" in errors_of(html, "security")
    assert exported(dealer)["imap"][0]["security"] == "ssl"


def test_mailbox_fetch_now_records_the_error_in_plain_words(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    unreachable = {**MAILBOX, "host": "127.0.0.1", "port": "9", "security": "ssl"}
    unreachable["interval"] = "60s"
    assert post(admin, "/settings/mailboxes/new", unreachable).status_code == 302
    response = post(admin, "/settings/mailboxes/filiale-nord/fetch", page="/settings/mailboxes")
    assert response.status_code == 302
    listing = admin.get("/settings/mailboxes").get_data(as_text=True)
    assert "Fehler" in listing
    unknown = post(admin, "/settings/mailboxes/nirgends/fetch", page="/settings/mailboxes")
    assert unknown.status_code == 404
    removed = post(admin, "/settings/mailboxes/filiale-nord/delete", page="/settings/mailboxes")
    assert removed.status_code == 302 and exported(dealer).get("imap", []) == []


def test_completion_reasons_rename_hide_add(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    html = admin.get("/settings/reasons").get_data(as_text=True)
    assert "Fahrzeug verkauft" in html  # the defaults before the dealer has his own list
    form = {
        "reason-0-label": "Verkauft!",
        "reason-0-outcome": "won",
        "reason-1-label": "Termin vereinbart",
        "reason-1-outcome": "won",
        "reason-1-hidden": "y",
        "reason-0-code": "hacked",  # codes are never read from the form
        "new-code": "financing_declined",
        "new-label": "Finanzierung abgelehnt",
        "new-outcome": "lost",
    }
    assert post(admin, "/settings/reasons", form).status_code == 302
    reasons = exported(dealer)["completion_reasons"]
    assert reasons[0] == {"code": "sold", "label": "Verkauft!", "outcome": "won", "hidden": False}
    assert reasons[1]["hidden"] is True
    assert reasons[-1]["code"] == "financing_declined" and reasons[-1]["outcome"] == "lost"
    assert len(reasons) == 9
    bad = post(admin, "/settings/reasons", {"new-code": "Mit Leerzeichen", "new-label": "x"})
    assert "Mit Leerzeichen" in bad.get_data(as_text=True)
    assert len(exported(dealer)["completion_reasons"]) == 9


def test_export_download_and_import_upload(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    download = admin.get("/settings/export.toml")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    text = download.get_data(as_text=True)
    assert 'from_name = "Autohaus Beispiel Verkauf"' in text
    changed = text.replace("Autohaus Beispiel Verkauf", "Hochgeladen")
    pool = 'mode = "pool"\npool_user = "chef@autohaus.example"'
    changed = changed.replace('mode = "rolling"', pool, 1)
    changed = changed.replace('pool_user = ""\n', "", 1)
    response = _upload(admin, changed)
    assert response.status_code == 302
    assert exported(dealer)["dealer"]["from_name"] == "Hochgeladen"
    after = admin.get("/settings/transfer").get_data(as_text=True)
    assert "Pool-Modus, aber diese Benutzer erhalten noch Leads" in after  # in German


def _upload(client: FlaskClient, text: str) -> object:
    from .webui_helpers import csrf_token

    token = csrf_token(client, "/settings/transfer")
    data = {"csrf_token": token, "file": (io.BytesIO(text.encode()), "settings.toml")}
    return client.post("/settings/transfer", data=data, content_type="multipart/form-data")


def test_import_that_would_lock_out_the_admin_is_refused(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    text = admin.get("/settings/export.toml").get_data(as_text=True)
    without_me = text.replace(f'email = "{ADMIN}"', 'email = "ersatz@autohaus.example"')
    response = _upload(admin, without_me)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ADMIN in errors_of(html, "file")
    broken = _upload(admin, "[dealer\nname = 1").get_data(as_text=True)
    assert "kein gültiges TOML" in errors_of(broken, "file")
    with db.session_scope(dealer) as session:
        assert session.scalar(select(User.active).where(User.email == ADMIN)) is True
        names = [u.email for u in session.scalars(select(User).where(User.active))]
        assert "ersatz@autohaus.example" not in names


def test_mail_template_override_preview_save_and_reset(
    app: Flask, dealer: sessionmaker[Session], tmp_path: Path
) -> None:
    from mailgate.config import PathSettings, Settings
    from mailgate.outbound.compose import render_mail
    from mailgate.outbound.samples import sample_context

    admin = logged_in(web_app(dealer, Settings(paths=PathSettings(data_dir=str(tmp_path)))), ADMIN)
    listing = admin.get("/settings/templates").get_data(as_text=True)
    assert "Neue Anfrage" in listing and "Passwort zurücksetzen" in listing  # titles, not files
    assert ">notification<" not in listing and ">stage1<" not in listing
    path = "/settings/templates/de/notification"
    page = admin.get(path).get_data(as_text=True)
    assert "Neue Anfrage" in page  # the packaged text is the starting point
    current = {
        "subject": "Neu: {{ customer.name }} fragt an",
        "text": "Hallo {{ assignee.name }},\nbitte melden bei {{ customer.phone }}.\n",
        "html": "<p>Hallo {{ assignee.name }}</p>",
    }
    preview = post(admin, path, {**current, "action": "preview"}).get_data(as_text=True)
    assert "Neu: Erika Musterfrau fragt an" in preview  # rendered with the sample data
    assert "bitte melden bei +49 170 1234567" in preview
    assert not (tmp_path / "templates").exists()  # a preview stores nothing
    broken = post(admin, path, {**current, "text": "{{ kunde.name }}", "action": "save"})
    html = broken.get_data(as_text=True)
    assert "de/notification.txt" in html and "kunde" in html
    assert not (tmp_path / "templates" / "de" / "notification.txt").exists()
    assert post(admin, path, {**current, "action": "save"}).status_code == 302
    folder = tmp_path / "templates"
    assert exported(dealer)["dealer"]["templates_dir"] == str(folder.resolve())
    mail = render_mail("notification", "de", sample_context("notification"), folder.resolve())
    assert mail.subject == "Neu: Erika Musterfrau fragt an"
    listing = admin.get("/settings/templates").get_data(as_text=True)
    own = r'de/notification" aria-label="[^"]*">Deutsch</a>\s*<span class="badge[^"]*">([^<]+)<'
    assert re.search(own, listing).group(1) == "eigene Fassung"
    reset = post(admin, path + "/reset", page=path)
    assert reset.status_code == 302
    assert not (folder / "de" / "notification.txt").exists()
    assert "Neue Anfrage" in admin.get(path).get_data(as_text=True)
    assert admin.get("/settings/templates/de/nichts").status_code == 404
    assert admin.get("/settings/templates/fr/notification").status_code == 404


def test_preview_applies_the_rule_for_the_example_source(admin: FlaskClient) -> None:
    args = {"stage1": "4h", "rule-0-source": "oem:*", "rule-0-stage1": "1h"}
    general = admin.get("/settings/preview.json", query_string={**args, "source": "mobile.de"})
    oem = admin.get("/settings/preview.json", query_string={**args, "source": "oem:vw"})
    assert general.get_json()["rule"] == ""
    assert oem.get_json()["rule"] == "Regel 1"
    assert oem.get_json()["stage1_at"] != general.get_json()["stage1_at"]


def test_region_picker_lists_a_countrys_regions(admin: FlaskClient) -> None:
    germany = admin.get("/settings/regions.json?country=DE").get_json()
    assert {"code": "BY", "name": "Bayern (BY)"} in germany["regions"]
    assert {"code": "catholic", "name": "Katholische Feiertage"} in germany["categories"]
    assert germany["categories"][0] == {"code": "public", "name": "Gesetzliche Feiertage"}
    assert admin.get("/settings/regions.json?country=XX").get_json()["regions"] == []


def test_status_feedback_entries_add_edit_remove(
    admin: FlaskClient, dealer: sessionmaker[Session]
) -> None:
    page = admin.get("/settings/feedback").get_data(as_text=True)
    assert "<h1>Statusmeldungen</h1>" in page
    added = post(
        admin,
        "/settings/feedback",
        {
            "new-source": "oem:*",
            "new-to": "status@oem.example",
            "new-language": "de",
            "new-dealer_number": " DE0621.00 ",
            "new-customer_data": "y",
        },
    )
    assert added.status_code == 302
    assert exported(dealer)["feedback"] == [
        {
            "source": "oem:*",
            "to": "status@oem.example",
            "webhook": "",
            "language": "de",
            "enabled": True,
            "dealer_number": "DE0621.00",
            "customer_data": True,
        }
    ]
    page = admin.get("/settings/feedback").get_data(as_text=True)
    assert 'name="fb-0-dealer_number" value="DE0621.00"' in page
    bad = post(
        admin,
        "/settings/feedback",
        {"fb-0-source": "oem:*", "fb-0-to": "kein", "fb-0-enabled": "y"},
    )
    assert bad.status_code == 200  # shown again with the reason, in German
    assert "Das ist keine E-Mail-Adresse. (feedback[0].to" in bad.get_data(as_text=True)
    assert exported(dealer)["feedback"][0]["to"] == "status@oem.example"  # nothing saved
    edited = post(
        admin,
        "/settings/feedback",
        {"fb-0-source": "oem:opel", "fb-0-to": "leadit@opel.example", "fb-0-language": ""},
    )
    assert edited.status_code == 302
    assert exported(dealer)["feedback"] == [
        {
            "source": "oem:opel",
            "to": "leadit@opel.example",
            "webhook": "",
            "language": "",
            "enabled": False,
            "dealer_number": "",
            "customer_data": False,
        }
    ]
    removed = post(
        admin,
        "/settings/feedback",
        {"fb-0-source": "oem:opel", "fb-0-to": "x@y.example", "fb-0-remove": "y"},
    )
    assert removed.status_code == 302 and exported(dealer).get("feedback", []) == []
