"""The settings pages' real controls (issue 21 item 6): what is saved is what the engine reads.

Each control gets a valid round trip (checked through :func:`load_dealer_config`, the view
the escalation and distribution use), an invalid input (a German error, nothing saved) and
an attacker's input (markup, forged values, no CSRF token, a non-admin).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import MultiDict

from mailgate import db
from mailgate.dealer_settings import load_dealer_config, stored_document
from mailgate.distribution.policies import LeadFacts, match_group
from mailgate.distribution.service import rules_of

from .test_webui_settings import (
    ADMIN,
    ANNA,
    admin,  # noqa: F401 - fixture
    app,  # noqa: F401 - fixture
    duration_pair,
    errors_of,
    shift_form,
)
from .webui_helpers import csrf_token, logged_in, post

BERLIN = ZoneInfo("Europe/Berlin")


def stored(factory: sessionmaker[Session]) -> dict:
    with db.session_scope(factory) as session:
        return stored_document(session)


def config(factory: sessionmaker[Session]):  # noqa: ANN201 - the DealerConfig
    with db.session_scope(factory) as session:
        return load_dealer_config(session)


def session_token(client: FlaskClient) -> str:
    """A valid CSRF token of the client's session, from a page a salesperson may open."""
    return csrf_token(client, "/account")


def post_multi(client: FlaskClient, path: str, data: MultiDict, page: str | None = None):  # noqa: ANN201
    data.add("csrf_token", csrf_token(client, page or path))
    return client.post(path, data=data)


# ---- opening hours: time pickers, split shifts ----


def test_split_shifts_are_what_the_working_calendar_reads(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    form = shift_form(
        mon=[("08:00", "12:00"), ("13:00", "18:00"), ("19:00", "00:00")],  # 00:00 = midnight
        sat=[("09:00", "13:00")],
    )
    assert post(admin, "/settings/hours", form).status_code == 302
    assert stored(dealer)["hours"]["mon"] == ["08:00-12:00", "13:00-18:00", "19:00-24:00"]
    calendar = config(dealer).calendar
    monday = datetime(2026, 12, 7, tzinfo=BERLIN)  # a Monday, no holiday
    assert calendar.is_open(monday.replace(hour=9))
    assert not calendar.is_open(monday.replace(hour=12, minute=30))  # the lunch break
    assert calendar.is_open(monday.replace(hour=23, minute=30))
    assert not calendar.is_open(monday.replace(day=8, hour=9))  # Tuesday: closed
    page = admin.get("/settings/hours").get_data(as_text=True)
    assert 'name="mon-2-end" value="00:00"' in page  # midnight shown as a time input can
    assert 'name="mon-3-start" value=""' in page  # the spare row for one more shift


@pytest.mark.parametrize(
    ("rows", "german"),
    [
        ([("08:00", "12:00"), ("11:30", "14:00")], "08:00–12:00 und 11:30–14:00 überschneiden"),
        ([("12:00", "08:00")], "12:00–08:00 endet, bevor sie beginnt"),
        ([("08:00", "")], "Bitte Beginn und Ende angeben"),
        ([("8 Uhr", "12:00")], "8 Uhr–12:00 ist keine Uhrzeit wie 08:00"),
    ],
)
def test_bad_shifts_are_refused_in_german_and_nothing_is_saved(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
    rows: list[tuple[str, str]],
    german: str,
) -> None:
    before = stored(dealer)["hours"]
    response = post(admin, "/settings/hours", shift_form(wed=rows, thu=[("08:00", "17:00")]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert german in errors_of(html, "wed")
    assert "Nichts wurde gespeichert" in html
    assert stored(dealer)["hours"] == before  # not even Thursday


def test_markup_in_a_time_input_is_refused_and_shown_escaped(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    attack = '"><script>alert(1)</script>'
    html = post(admin, "/settings/hours", shift_form(fri=[(attack, "12:00")])).get_data(
        as_text=True
    )
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert stored(dealer)["hours"]["fri"] == []
    too_many = shift_form(fri=[(f"{h:02}:00", f"{h:02}:30") for h in range(8, 18)])
    refused = post(admin, "/settings/hours", too_many).get_data(as_text=True)
    assert "Höchstens 8 Öffnungszeiten pro Tag" in errors_of(refused, "fri")


def test_hours_need_an_admin_and_a_csrf_token(
    app: Flask,  # noqa: F811
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    form = shift_form(mon=[("08:00", "18:00")])
    assert admin.post("/settings/hours", data=form).status_code == 400  # no token
    anna = logged_in(app, ANNA)
    form["csrf_token"] = session_token(anna)
    assert anna.post("/settings/hours", data=form).status_code == 403
    assert anna.get("/settings/preview.json", query_string=form).status_code == 403
    assert stored(dealer)["hours"]["mon"] == []


# ---- durations: hours + minutes ----


def test_durations_round_trip_into_the_escalation_times(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    form = {
        **duration_pair("stage1", "1", "30"),
        **duration_pair("reminder_before", "0", "20"),
        **duration_pair("stage2", "48", ""),
        **duration_pair("stage2_resubmission", "", "45"),
        **duration_pair("follow_up_after", "3", "0"),
    }
    assert post(admin, "/settings/escalation", form).status_code == 302
    esc = stored(dealer)["escalation"]
    assert (esc["stage1"], esc["reminder_before"], esc["stage2"]) == ("1h30m", "20m", "48h")
    assert (esc["stage2_resubmission"], esc["follow_up_after"]) == ("45m", "3h")
    times = config(dealer).escalation_times("website", "inquiry")
    assert times.stage1 == timedelta(minutes=90) and times.stage2 == timedelta(days=2)
    assert times.reminder_before == timedelta(minutes=20)
    page = admin.get("/settings/escalation").get_data(as_text=True)
    assert 'name="stage1-hours" value="1"' in page and 'name="stage1-minutes" value="30"' in page


@pytest.mark.parametrize(
    ("hours", "minutes", "german"),
    [
        ("1", "75", "Minuten gehen von 0 bis 59"),
        ("vier", "", "Stunden und Minuten müssen ganze Zahlen sein"),
        ("-1", "0", "Stunden und Minuten müssen ganze Zahlen sein"),
        ("99999999999999999999", "0", "Höchstens 9999 Stunden"),
        ("", "", "Bitte eine Dauer angeben"),
    ],
)
def test_bad_durations_are_refused_at_the_field(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
    hours: str,
    minutes: str,
    german: str,
) -> None:
    form = {
        **duration_pair("stage1", hours, minutes),
        **duration_pair("reminder_before", "1", "0"),
        **duration_pair("stage2", "2", "0"),  # would change: must not be saved either
        **duration_pair("stage2_resubmission", "8", "0"),
    }
    html = post(admin, "/settings/escalation", form).get_data(as_text=True)
    assert german in errors_of(html, "stage1")
    assert stored(dealer)["escalation"]["stage2"] == "24h"


def test_a_bad_rule_duration_names_the_rule(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    data = MultiDict(
        {
            **duration_pair("stage1", "4", "0"),
            **duration_pair("reminder_before", "1", "0"),
            **duration_pair("stage2", "24", "0"),
            **duration_pair("stage2_resubmission", "8", "0"),
            **duration_pair("rule-0-stage1", "1", "99"),
            "rule-0-source": "mobile.de",
        }
    )
    html = post_multi(admin, "/settings/escalation", data).get_data(as_text=True)
    assert "Regel 1, Antwort innerhalb von (Arbeitszeit): Minuten gehen von 0 bis 59" in html
    assert stored(dealer)["escalation"]["rules"] == []


# ---- holidays: categories checklist, closures as date rows ----


def test_holiday_categories_and_closures_round_trip(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    weekdays = shift_form(
        **{d: [("08:00", "18:00")] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
    )
    assert post(admin, "/settings/hours", weekdays).status_code == 302  # holidays need hours
    data = MultiDict(
        {
            "country": "DE",
            "subdivision": "BY",
            "categories-list": "1",
            "closure-0-from": "2026-12-24",
            "closure-0-until": "2026-12-31",
            "closure-1-from": "2026-06-05",
            "closure-1-until": "",
        }
    )
    data.add("categories", "public")
    data.add("categories", "catholic")
    data.add("categories", "evil<script>")  # not offered for Germany: dropped
    assert post_multi(admin, "/settings/holidays", data).status_code == 302
    cal = stored(dealer)["holidays"]
    assert cal["categories"] == ["public", "catholic"]
    assert cal["closures"] == ["2026-12-24..2026-12-31", "2026-06-05"]
    calendar = config(dealer).calendar
    assert calendar.closed_reason(datetime(2026, 8, 15).date()) is not None  # Assumption Day
    assert calendar.closed_reason(datetime(2026, 12, 29).date()) is not None
    assert calendar.closed_reason(datetime(2026, 6, 5).date()) is not None
    page = admin.get("/settings/holidays?year=2026").get_data(as_text=True)
    assert re.search(r'value="catholic" id="category-\d+" checked>\s*<label[^>]*>Katholische', page)
    assert 'type="date"' in page and 'name="closure-0-from" value="2026-12-24"' in page
    # delete the first closure
    delete = MultiDict(
        {
            "country": "DE",
            "subdivision": "BY",
            "categories-list": "1",
            "categories": "public",
            "closure-0-from": "2026-12-24",
            "closure-0-until": "2026-12-31",
            "closure-0-delete": "1",
            "closure-1-from": "2026-06-05",
            "closure-1-until": "2026-06-05",
        }
    )
    assert post_multi(admin, "/settings/holidays", delete).status_code == 302
    assert stored(dealer)["holidays"]["closures"] == ["2026-06-05"]
    assert stored(dealer)["holidays"]["categories"] == ["public"]


@pytest.mark.parametrize(
    ("first", "last", "german"),
    [
        ("2026-12-31", "2026-12-24", "Der letzte geschlossene Tag liegt vor dem ersten"),
        ("<script>", "", "Bitte den ersten geschlossenen Tag wählen"),
        ("2026-01-01", "2028-01-01", "höchstens ein Jahr"),
        ("", "2026-12-24", "Bitte den ersten geschlossenen Tag wählen"),
    ],
)
def test_bad_closures_are_refused_in_german(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
    first: str,
    last: str,
    german: str,
) -> None:
    form = {"country": "DE", "subdivision": "HH", "categories-list": "1", "categories": "public"}
    form |= {"closure-0-from": first, "closure-0-until": last}
    html = post(admin, "/settings/holidays", form).get_data(as_text=True)
    assert german in errors_of(html, "closures")
    assert "<script>" not in html.split("<main", 1)[1]
    assert stored(dealer)["holidays"]["subdivision"] == ""  # nothing saved


# ---- distribution groups: choices of real sources, kinds, makes, locations ----


def test_group_rules_from_choices_are_what_routing_reads(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
) -> None:
    data = MultiDict(
        {
            "mode": "groups",
            "fallback_user": ANNA,
            "pool_user": "",
            "locations": "Nord: nord@autohaus.example",
            "relay_domains": "",
            "group-0-name": "Nissan <b>Team</b>",
            "group-0-make-expert": "Infiniti*",
        }
    )
    for key, value in (
        ("group-0-source", "oem:nissan"),
        ("group-0-source", "mobile.de"),
        ("group-0-kind", "test_drive"),
        ("group-0-make", "Nissan"),
        ("group-0-location", "Nord"),
    ):
        data.add(key, value)
    assert post_multi(admin, "/settings/distribution", data).status_code == 302
    group = stored(dealer)["groups"][0]
    assert group == {
        "name": "Nissan <b>Team</b>",
        "match": {
            "source": ["oem:nissan", "mobile.de"],
            "kind": ["test_drive"],
            "make": ["Nissan", "Infiniti*"],
            "location": ["Nord"],
        },
    }
    groups = rules_of(config(dealer)).groups  # what the distribution routes by
    nissan = LeadFacts(source="oem:nissan", kind="test_drive", make="Nissan", location="Nord")
    assert match_group(groups, nissan) is not None
    assert match_group(groups, LeadFacts("oem:nissan", "inquiry", "Nissan", "Nord")) is None
    infiniti = LeadFacts("mobile.de", "test_drive", "Infiniti Q50", "Nord")
    assert match_group(groups, infiniti) is not None  # the expert pattern
    page = admin.get("/settings/distribution").get_data(as_text=True)
    assert "Nissan <b>Team</b>" not in page and "Nissan &lt;b&gt;Team&lt;/b&gt;" in page
    assert re.search(r'value="oem:nissan" id="group-0-source-\d+" checked>', page)
    assert re.search(r'value="Nord" id="group-0-location-\d+" checked>', page)
    assert "Hersteller: Nissan" in page and "Probefahrt" in page  # words, not codes
    assert 'value="Infiniti*"' in page  # the expert pattern stays


@pytest.mark.parametrize(
    ("name", "german"),
    [
        ("", "Gruppe 1: Bitte der Gruppe einen Namen geben."),
        ("x" * 101, "höchstens 100 Zeichen"),
    ],
)
def test_a_group_needs_a_name_of_sensible_length(
    admin: FlaskClient,  # noqa: F811
    dealer: sessionmaker[Session],
    name: str,
    german: str,
) -> None:
    form = {"mode": "rolling", "fallback_user": "", "pool_user": "", "locations": ""}
    form |= {"relay_domains": "", "group-0-name": name, "group-0-kind": "test_drive"}
    html = post(admin, "/settings/distribution", form).get_data(as_text=True)
    assert german in html
    assert stored(dealer)["groups"] == []


def test_group_rules_need_an_admin(app: Flask, dealer: sessionmaker[Session]) -> None:  # noqa: F811
    anna = logged_in(app, ANNA)
    form = {"group-0-name": "Übernahme", "csrf_token": session_token(anna)}
    response = anna.post("/settings/distribution", data=form)
    assert response.status_code == 403
    assert stored(dealer)["groups"] == []


# ---- the template editor: titles, variables, live preview in the sandbox ----

PREVIEW = "/settings/templates/de/notification/preview"
EDITOR = "/settings/templates/de/notification"


def preview(client: FlaskClient, **parts: str) -> str:
    data = {"subject": "Neu: {{ customer.name }}", "text": "Hallo", "html": "<p>Hallo</p>"}
    response = post(client, PREVIEW, {**data, **parts}, page=EDITOR)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_templates_are_listed_by_title_and_the_editor_lists_variables(
    admin: FlaskClient,  # noqa: F811
) -> None:
    listing = admin.get("/settings/templates").get_data(as_text=True)
    assert "Eskalation Stufe 1: überfällig" in listing
    assert "Teilt der zuständigen Person mit, dass die Antwortzeit abgelaufen ist." in listing
    assert ">stage1<" not in listing and ">imap_oversize<" not in listing
    editor = admin.get(EDITOR).get_data(as_text=True)
    assert "<h1" in editor and "Neue Anfrage" in editor
    assert "<code>{{ customer }}</code>" in editor
    assert "Die Kundschaft: Name, E-Mail, Telefon, Adresse" in editor
    assert "<code>lead.vehicle</code>" in editor  # the fields of a structured variable
    assert f'hx-post="{PREVIEW}"' in editor


def test_live_preview_renders_sample_data_escaped_and_stores_nothing(
    admin: FlaskClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    html = preview(admin, subject="<script>alert(1)</script> {{ customer.name }}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Erika Musterfrau" in html
    assert "<script>alert(1)</script>" not in html
    assert 'sandbox=""' in html  # the HTML version only in a frame without scripts
    assert not (tmp_path / "templates").exists()


@pytest.mark.parametrize(
    ("text", "german"),
    [
        ("{{ ''.__class__.__mro__ }}", "Nicht erlaubt"),
        ("{{ lead.__class__.__init__.__globals__ }}", "Nicht erlaubt"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "Die Vorlage tut zu viel",
        ),
        ("{{ 'x' * 1000000000 }}", "Die Vorlage tut zu viel"),
        ("{% include '/etc/passwd' %}", "nicht erlaubt"),
        ("{{ kunde.name }}", "Unbekannte Variable kunde"),
    ],
)
def test_live_preview_refuses_escapes_and_runaways_in_german(
    admin: FlaskClient,  # noqa: F811
    text: str,
    german: str,
) -> None:
    html = preview(admin, text=text)
    problems = re.search(r'id="template-problems">(.*?)</ul>', html, re.S)
    assert problems is not None and german in problems.group(1)
    assert "Traceback" not in html and "<class" not in html


def test_live_preview_needs_an_admin_and_a_token(app: Flask) -> None:  # noqa: F811
    admin_client = logged_in(app, ADMIN)
    assert admin_client.post(PREVIEW, data={"text": "x"}).status_code == 400
    anna = logged_in(app, ANNA)
    assert (
        anna.post(PREVIEW, data={"text": "x", "csrf_token": session_token(anna)}).status_code == 403
    )
    token = {"csrf_token": session_token(admin_client)}
    assert admin_client.post("/settings/templates/de/nichts/preview", data=token).status_code == 404
