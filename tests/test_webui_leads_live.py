"""The list and My day keep themselves up to date (issue 21 item 7): the htmx fragments.

The list's poll answers only with a notice of new leads (never the rows: a user ticking
leads for a bulk action keeps the ticks), counted in the user's scope and filter; a click
fetches the table of the same page.  My day's poll swaps the agenda only when it changed.
Without a session no fragment shows the login page; no fragment shows a lead out of scope.
Both databases.
"""

# ruff: noqa: F811 - app, team: fixtures of test_webui_leads
from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import utcnow

from .test_webui_leads import EMAILS, app, body, make_lead, team  # noqa: F401
from .webui_helpers import logged_in

HTMX = {"HX-Request": "true"}


def newest_id(page: str) -> int:
    """The ``after`` of the list's poll: the newest lead the page knows of."""
    found = re.search(r'hx-get="/leads/updates\?after=(\d+)', page)
    assert found is not None, "the list polls for new leads"
    return int(found.group(1))


def fragment(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url, headers=HTMX)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def test_the_notice_counts_new_leads_in_scope_and_filter(
    app: Flask, team: sessionmaker[Session]
) -> None:
    make_lead(team, "anna", name="Erste Kundin")
    anna = logged_in(app, EMAILS["anna"])
    after = newest_id(body(anna, "/leads?kind=inquiry"))
    url = f"/leads/updates?after={after}&kind=inquiry&swap=1"
    assert fragment(anna, url, 204) == ""  # nothing new: htmx swaps nothing
    make_lead(team, "ben", name="Bens Kunde")  # not Anna's: she must not even learn of it
    make_lead(team, "anna", name="Service-Kunde", kind="service")  # hers, but filtered out
    assert fragment(anna, url, 204) == ""
    make_lead(team, "anna", name="Neue Kundin", kind="inquiry")
    make_lead(team, None, name="Niemandes Kunde")  # unassigned: an admin's, not Anna's
    notice = fragment(anna, url)
    assert "1 neue Anfrage" in notice and 'role="status"' in notice
    assert 'hx-get="/leads/table?page=1&amp;kind=inquiry"' in notice  # same page, same filter
    assert "Kundin" not in notice and "Bens" not in notice  # a count, never a customer
    ada = logged_in(app, EMAILS["ada"])
    assert "4 neue Anfragen" in fragment(ada, f"/leads/updates?after={after}")


def test_the_fresh_table_is_the_lists_page_in_scope(
    app: Flask, team: sessionmaker[Session]
) -> None:
    make_lead(team, "anna", name="Alte Kundin")
    anna = logged_in(app, EMAILS["anna"])
    after = newest_id(body(anna, "/leads"))
    new = make_lead(
        team, "anna", name="<script>alert('x')</script>", vehicle={"make": "VW", "model": "Golf"}
    )
    bens = make_lead(team, "ben", name="Bens Kunde")
    table = fragment(anna, "/leads/table")
    assert f'href="/leads/{new}"' in table and f'href="/leads/{bens}"' not in table
    assert "<script>alert" not in table and "&lt;script&gt;alert(" in table
    assert "VW Golf" in table  # the vehicle is a default column
    # count, pager and a fresh poll (knowing the new lead) come along out of band
    assert '<small id="lead-count" hx-swap-oob="true">(2)</small>' in table
    assert 'id="lead-pager"' in table and f"after={new}" in table and after < new
    assert fragment(anna, f"/leads/updates?after={new}", 204) == ""


def test_fragments_without_login_never_show_the_login_page(
    app: Flask, team: sessionmaker[Session]
) -> None:
    make_lead(team, "anna")
    nobody = app.test_client()
    for url in ("/leads/updates?after=0", "/my-day/agenda?known=x"):
        polled = nobody.get(url, headers=HTMX)
        assert polled.status_code == 286 and polled.get_data() == b""  # htmx: stop polling
        assert nobody.get(url).status_code == 401
    clicked = nobody.get("/leads/table", headers=HTMX)
    assert clicked.status_code == 401 and b"Anfrage" not in clicked.get_data()


def test_hostile_poll_values_are_refused_or_ignored(
    app: Flask, team: sessionmaker[Session]
) -> None:
    make_lead(team, "anna")
    anna = logged_in(app, EMAILS["anna"])
    for after in ("", "-1", "1e9", "99999999999999", "１２", "1 OR 1=1"):
        assert anna.get(f"/leads/updates?after={after}").status_code == 400
    # unknown filter values are dropped like the list drops them; a page past the end is clamped
    ok = anna.get("/leads/table?kind=<x>&assignee=1;DROP&page=999999999999")
    assert ok.status_code == 200 and "Seite 1 von 1" in ok.get_data(as_text=True)


def test_my_day_swaps_only_when_the_agenda_changed(app: Flask, team: sessionmaker[Session]) -> None:
    now = utcnow()
    late = {"soon_at": now - timedelta(hours=2), "overdue_at": now - timedelta(hours=1)}
    make_lead(team, "anna", name="Wartende Kundin", **late)
    anna = logged_in(app, EMAILS["anna"])
    page = body(anna, "/my-day")
    known = re.search(r'hx-get="/my-day/agenda\?known=(\w+)"', page)
    assert known is not None and 'hx-trigger="every 30s"' in page
    assert fragment(anna, f"/my-day/agenda?known={known.group(1)}", 204) == ""
    make_lead(team, "ben", name="Bens Kunde", **late)  # Ben's: Anna's agenda is unchanged
    assert fragment(anna, f"/my-day/agenda?known={known.group(1)}", 204) == ""
    new = make_lead(team, "anna", name="<img src=x onerror=alert(1)>", **late)
    agenda = fragment(anna, f"/my-day/agenda?known={known.group(1)}")
    assert f'href="/leads/{new}"' in agenda and "Bens Kunde" not in agenda
    assert "<img src=x" not in agenda and "&lt;img src=x" in agenda
    assert '<small id="day-count" hx-swap-oob="true">(2)</small>' in agenda
    fresh = re.search(r'hx-get="/my-day/agenda\?known=(\w+)"', agenda)
    assert fresh is not None and fresh.group(1) != known.group(1)
    assert fragment(anna, f"/my-day/agenda?known={fresh.group(1)}", 204) == ""
    assert fragment(anna, "/my-day/agenda?known=<script>") != ""  # a stale value: a fresh agenda
