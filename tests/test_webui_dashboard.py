"""The supervisor overview: its numbers on a seeded database, each link's list, scope, roles.

Times are laid relative to the dealer's local midnight, so "today", "yesterday" and
"this week" hold whenever the test runs.  The example dealer has no opening hours
configured, so working time runs on and the median first response is plain hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.dealer_settings import import_settings
from mailgate.models import Lead, ProtocolEntry, User, utcnow

from .conftest import DEALER_TOML
from .webui_helpers import ensure_user, logged_in, web_app

ZONE = ZoneInfo("Europe/Berlin")
ADMIN, ANNA, BERT, CHEF, DORA, POOL = (
    "admin@autohaus.example",
    "anna@autohaus.example",
    "bert@autohaus.example",
    "chef@autohaus.example",
    "dora@autohaus.example",
    "pool@autohaus.example",
)
TEAM_TOML = (
    DEALER_TOML.replace(
        '[distribution]\nfallback_user = "anna@autohaus.example"',
        '[distribution]\nfallback_user = "anna@autohaus.example"\n'
        'pool_user = "pool@autohaus.example"',
    )
    + '\n[[users]]\nemail = "pool@autohaus.example"\nname = "Pool"\nreceives_leads = false\n'
)


@dataclass(frozen=True)
class Clock:
    """Instants around the dealer's day at seeding time (all UTC)."""

    now: datetime
    midnight: datetime  # today's local midnight
    tonight: datetime  # the next local midnight

    @property
    def today(self) -> datetime:
        """Surely today: halfway between midnight and now."""
        return self.midnight + (self.now - self.midnight) / 2

    @property
    def later_today(self) -> datetime:
        """Surely later today: halfway between now and tonight."""
        return self.now + (self.tonight - self.now) / 2

    @property
    def yesterday(self) -> datetime:
        return self.midnight - timedelta(hours=6)


def clock() -> Clock:
    now = utcnow()
    local = now.astimezone(ZONE).date()
    midnight = datetime.combine(local, time(), tzinfo=ZONE).astimezone(UTC)
    tonight = datetime.combine(local + timedelta(days=1), time(), tzinfo=ZONE).astimezone(UTC)
    return Clock(now, midnight, tonight)


def add(
    session: Session,
    key: str,
    owner: int | None,
    received: datetime,
    *,
    source: str = "mobile.de",
    status: str = "assigned",
    soon_at: datetime | None = None,
    overdue_at: datetime | None = None,
    stage: int = 0,
    answered_after: timedelta | None = None,
) -> int:
    lead = Lead(
        dedupe_key=key,
        reply_token=f"token-{key}",
        assignee_id=owner,
        source=source,
        status=status,
        received_at=received,
        soon_at=soon_at,
        overdue_at=overdue_at,
        escalation_stage=stage,
        first_response_at=received + answered_after if answered_after is not None else None,
    )
    session.add(lead)
    session.flush()
    return lead.id


def escalate(session: Session, lead_id: int, action: str, at: datetime) -> None:
    session.add(ProtocolEntry(lead_id=lead_id, at=at, actor="system", action=action))


@dataclass(frozen=True)
class Seeded:
    ids: dict[str, int]  # lead key -> id
    users: dict[str, int]  # e-mail -> user id
    clock: Clock


def seed_team(dealer: sessionmaker[Session]) -> Seeded:
    """Anna (Carl's team), Bert (Dora's), a pool and a lead nobody has; see each key."""
    with db.session_scope(dealer) as session:
        import_settings(session, TEAM_TOML)
    users = {
        ADMIN: ensure_user(dealer, ADMIN, "admin", name="Ada Admin"),
        ANNA: ensure_user(dealer, ANNA, "salesperson", name="Anna Schmidt", supervisor_email=CHEF),
        BERT: ensure_user(dealer, BERT, "salesperson", name="Bert Brandt", supervisor_email=DORA),
        CHEF: ensure_user(dealer, CHEF, "supervisor", name="Carl Chef"),
        DORA: ensure_user(dealer, DORA, "supervisor", name="Dora Dienst"),
        POOL: ensure_user(dealer, POOL, "salesperson", name="Pool", password=None),
    }
    c = clock()
    e = c.now - c.midnight  # time elapsed today
    anna, bert = users[ANNA], users[BERT]
    with db.session_scope(dealer) as s:
        ids = {
            # Anna (Carl's team)
            "a1-overdue": add(s, "a1", anna, c.yesterday, soon_at=c.now - timedelta(hours=2),
                              overdue_at=c.now - timedelta(hours=1), stage=2),
            "a2-due-today": add(s, "a2", anna, c.yesterday, source="website",
                                soon_at=c.later_today, overdue_at=c.later_today),
            "a3-answered": add(s, "a3", anna, c.midnight + e / 10, status="contacted",
                               answered_after=e * 2 / 10, overdue_at=c.now),
            "a4-closed": add(s, "a4", anna, c.midnight + e / 10, status="closed",
                             answered_after=e * 6 / 10),
            "a5-resubmission": add(s, "a5", anna, c.now - timedelta(days=10), source="website",
                                   stage=10, soon_at=c.later_today,
                                   answered_after=timedelta(hours=1)),
            "a6-deleted": add(s, "a6", anna, c.today, status="deleted",
                              overdue_at=c.now - timedelta(hours=1)),
            "a7-junk": add(s, "a7", anna, c.today, source="unknown", stage=99,
                           overdue_at=c.now - timedelta(hours=1)),
            "a8-next-week": add(s, "a8", anna, c.today, source="unknown",
                                overdue_at=c.tonight + timedelta(days=2)),
            # Bert (Dora's team)
            "b1-overdue": add(s, "b1", bert, c.now - timedelta(days=2),
                              overdue_at=c.now - timedelta(days=1), stage=3),
            "b2-today": add(s, "b2", bert, c.today, source="autoscout24",
                            overdue_at=c.tonight + timedelta(days=1)),
            # nobody's
            "p1-pool": add(s, "p1", users[POOL], c.today, source="oem:nissan",
                           overdue_at=c.tonight + timedelta(days=1)),
            "u1-unassigned": add(s, "u1", None, c.today, source="unknown", status="new"),
        }  # fmt: skip
        escalate(s, ids["a1-overdue"], "stage1", c.today)
        escalate(s, ids["a2-due-today"], "stage1", c.yesterday)  # not today
        escalate(s, ids["b1-overdue"], "stage1", c.today)
        escalate(s, ids["b1-overdue"], "stage2", c.today)
        escalate(s, ids["b1-overdue"], "note", c.today)  # not an escalation
    return Seeded(ids, users, c)


@pytest.fixture
def seeded(dealer: sessionmaker[Session]) -> Seeded:
    return seed_team(dealer)


@pytest.fixture
def app(dealer: sessionmaker[Session], seeded: Seeded) -> Flask:
    return web_app(dealer)


def listed(client: FlaskClient, href: str) -> set[int]:
    """The lead ids the lead list shows at ``href`` (a dashboard link)."""
    page = client.get(href)
    assert page.status_code == 200, href
    return {int(i) for i in re.findall(r'href="/leads/(\d+)"', page.get_data(as_text=True))}


def links(html: str, element_id: str) -> list[tuple[str, int]]:
    """(href, number) of every number link inside the element with ``element_id``."""
    start = html.index(f'id="{element_id}"')
    end = html.find("</p>" if element_id.startswith("stat-") else "</section>", start)
    block = html[start : end if end > 0 else None]
    found = re.findall(r'<a class="overview-number[^"]*" href="([^"]+)"[^>]*>([^<]+)<', block)
    return [(href.replace("&amp;", "&"), int(n)) for href, n in found if n.strip().isdigit()]


def team_rows(html: str) -> dict[str, list[tuple[str, int]]]:
    """Per salesperson name: the (href, count) of open, overdue, due today."""
    table = re.search(r'<table[^>]*id="team-table".*?</table>', html, re.S)
    assert table, "no team table"
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S):
        name = re.search(r'<th scope="row"[^>]*>(.*?)</th>', row, re.S)
        if name:
            found = re.findall(r'<a class="overview-number[^"]*" href="([^"]+)"[^>]*>(\d+)<', row)
            rows[name.group(1).strip()] = [(h.replace("&amp;", "&"), int(n)) for h, n in found]
    return rows


def ids_of(seeded: Seeded, *keys: str) -> set[int]:
    return {seeded.ids[k] for k in keys}


def test_admin_sees_every_salesperson_with_counts_that_match_their_lists(
    app: Flask, seeded: Seeded
) -> None:
    client = logged_in(app, ADMIN)
    page = client.get("/overview/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = team_rows(html)
    assert set(rows) == {"Anna Schmidt", "Bert Brandt"}  # not the pool, not the supervisors
    (a_open, n_open), (a_over, n_over), (a_today, n_today) = rows["Anna Schmidt"]
    assert (n_open, n_over, n_today) == (6, 1, 2)
    opened = ids_of(seeded, "a1-overdue", "a2-due-today", "a3-answered", "a5-resubmission")
    assert listed(client, a_open) == opened | ids_of(seeded, "a7-junk", "a8-next-week")
    assert listed(client, a_over) == ids_of(seeded, "a1-overdue")
    assert listed(client, a_today) == ids_of(seeded, "a2-due-today", "a5-resubmission")
    assert [n for _, n in rows["Bert Brandt"]] == [2, 1, 0]
    assert listed(client, rows["Bert Brandt"][1][0]) == ids_of(seeded, "b1-overdue")


def test_median_first_response_this_week_in_working_hours_and_its_list(
    app: Flask, seeded: Seeded
) -> None:
    client = logged_in(app, ADMIN)
    html = client.get("/overview/").get_data(as_text=True)
    elapsed_h = (seeded.clock.now - seeded.clock.midnight).total_seconds() / 3600
    median = (elapsed_h * 2 / 10 + elapsed_h * 6 / 10) / 2  # a3 and a4, the closed one too
    shown = f"{median:.1f}".replace(".", ",")
    anna = re.search(r"Anna Schmidt</th>.*?</tr>", html, re.S)
    assert anna is not None
    link = re.search(
        r'<a class="overview-number" href="([^"]+answered=yes[^"]*)"[^>]*>([^<]+)<', anna[0]
    )
    assert link is not None and link.group(2) == f"{shown} Std."
    assert listed(client, link.group(1).replace("&amp;", "&")) == ids_of(
        seeded, "a3-answered", "a4-closed"
    )  # a5 was answered, but received last week
    assert "2 beantwortet" in anna[0]
    bert = re.search(r"Bert Brandt</th>.*?</tr>", html, re.S)
    assert bert is not None and "diese Woche keine Anfrage beantwortet" in bert[0]
    assert "Arbeitszeit (Öffnungszeiten des Autohauses, wie in den Berichten)" in html


def test_intake_by_source_with_display_names_pool_unassigned_and_escalations(
    app: Flask, seeded: Seeded
) -> None:
    client = logged_in(app, ADMIN)
    html = client.get("/overview/").get_data(as_text=True)
    block = html[html.index('id="intake-list"') : html.index('id="h-escalations"')]
    intake = re.findall(r"<li[^>]*>\s*<span>([^<]+)</span>\s*<a[^>]*>(\d+)<", block)
    assert intake == [("Unbekannt", "3"), ("mobile.de", "2"), ("AutoScout24", "1"),
                      ("Hersteller: Nissan", "1")]  # fmt: skip
    text = re.sub(r'(href|id)="[^"]*"', "", html)  # codes may stand in links and ids only
    assert "oem:nissan" not in text and "unknown" not in text and "autoscout24" not in text
    by_source = dict(links(html, "h-intake"))
    unknown = next(href for href in by_source if "source=unknown" in href)
    assert listed(client, unknown) == ids_of(seeded, "a7-junk", "a8-next-week", "u1-unassigned")
    [(total, n)] = links(html, "stat-intake")
    assert n == 7 and len(listed(client, total)) == 7  # a6 was deleted
    [(pool, n)] = links(html, "stat-pool")
    assert n == 1 and listed(client, pool) == ids_of(seeded, "p1-pool")
    [(nobody, n)] = links(html, "stat-unassigned")
    assert n == 1 and listed(client, nobody) == ids_of(seeded, "u1-unassigned")
    [(escalated, n)] = links(html, "stat-escalated")
    assert n == 2 and listed(client, escalated) == ids_of(seeded, "a1-overdue", "b1-overdue")
    stages = links(html, "h-escalations")
    assert [n for _, n in stages] == [2, 1]
    assert listed(client, stages[1][0]) == ids_of(seeded, "b1-overdue")  # to the supervisor


def test_supervisor_sees_only_his_team_and_the_pool(app: Flask, seeded: Seeded) -> None:
    client = logged_in(app, CHEF)
    html = client.get("/overview/").get_data(as_text=True)
    assert set(team_rows(html)) == {"Anna Schmidt"}
    assert "Bert Brandt" not in html and "AutoScout24" not in html
    [(_, intake)] = links(html, "stat-intake")
    assert intake == 5  # a3, a4, a7, a8 and the pool's p1; not Bert's, not the unassigned
    assert links(html, "stat-pool")[0][1] == 1
    assert links(html, "stat-unassigned")[0][1] == 0
    [(escalated, n)] = links(html, "stat-escalated")
    assert n == 1 and listed(client, escalated) == ids_of(seeded, "a1-overdue")
    dora = logged_in(app, DORA).get("/overview/").get_data(as_text=True)
    assert set(team_rows(dora)) == {"Bert Brandt"} and "Anna Schmidt" not in dora


def test_a_salesperson_gets_403_on_the_page_and_the_fragment(app: Flask) -> None:
    client = logged_in(app, ANNA)
    assert client.get("/overview/").status_code == 403
    assert client.get("/overview/live", headers={"HX-Request": "true"}).status_code == 403
    assert client.get("/").headers["Location"].endswith("/my-day")


def test_logged_out_poll_stops_and_a_page_visit_goes_to_the_login(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/overview/live", headers={"HX-Request": "true"}).status_code == 286
    assert "/login" in client.get("/overview/live").headers["Location"]
    assert "/login" in client.get("/overview/").headers["Location"]


def test_live_fragment_is_the_figures_block_that_polls_itself(
    app: Flask, dealer: sessionmaker[Session], seeded: Seeded
) -> None:
    client = logged_in(app, CHEF)
    before = client.get("/overview/live", headers={"HX-Request": "true"})
    assert before.status_code == 200 and before.headers["Cache-Control"] == "no-store"
    fragment = before.get_data(as_text=True)
    assert fragment.lstrip().startswith("{#") is False and "<html" not in fragment
    root = re.search(r'<div id="overview-live"[^>]*>', fragment)
    assert root is not None
    assert 'hx-get="/overview/live"' in root[0] and 'hx-swap="outerHTML"' in root[0]
    seconds = int(re.search(r'hx-trigger="every (\d+)s"', root[0])[1])  # type: ignore[index]
    assert 30 <= seconds <= 60
    with db.session_scope(dealer) as s:  # a new lead for Anna arrives
        add(s, "a9", seeded.users[ANNA], utcnow(), source="website")
    after = client.get("/overview/live", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert links(after, "stat-intake")[0][1] == links(fragment, "stat-intake")[0][1] + 1
    page = client.get("/overview/").get_data(as_text=True)
    assert "<script>" not in page and " style=" not in page and "hx-on" not in page


def test_names_are_escaped(app: Flask, dealer: sessionmaker[Session], seeded: Seeded) -> None:
    with db.session_scope(dealer) as session:
        anna = session.get(User, seeded.users[ANNA])
        assert anna is not None
        anna.name = '<img src=x onerror=alert(1)>"'
    html = logged_in(app, CHEF).get("/overview/").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;" in html  # the row and the hidden texts
    assert "offene Anfragen von &lt;img src=x onerror=alert(1)&gt;&#34;" in html
    with db.session_scope(dealer) as session:  # a source as a hostile mail could name it
        add(session, "evil", seeded.users[ANNA], seeded.clock.today, source="<b>x</b>")
    html = logged_in(app, CHEF).get("/overview/").get_data(as_text=True)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_empty_states_in_german(factory: sessionmaker[Session]) -> None:
    """A new installation: no settings imported, nobody but an admin and a supervisor."""
    ensure_user(factory, ADMIN, "admin", name="Ada Admin")
    ensure_user(factory, CHEF, "supervisor", name="Carl Chef")
    app = web_app(factory)
    html = logged_in(app, ADMIN).get("/overview/").get_data(as_text=True)
    assert "Es gibt noch keine Verkäufer:innen." in html
    assert "Heute ist noch keine Anfrage eingegangen." in html
    assert "Heute wurde nichts eskaliert." in html
    assert "Kein Pool eingerichtet." in html
    chef = logged_in(app, CHEF).get("/overview/").get_data(as_text=True)
    assert "Ihrem Team gehört noch niemand an" in chef
    assert "Übersicht" in chef and "Heute eingegangen" in chef and "Im Pool" in chef


def test_english_labels(app: Flask, dealer: sessionmaker[Session]) -> None:
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin", language="en")
    html = logged_in(app, ADMIN).get("/overview/").get_data(as_text=True)
    assert "Received today by source" in html and "Unknown" in html and "Due today" in html


def test_due_today_filter_is_my_day_less_the_overdue(app: Flask, seeded: Seeded) -> None:
    """The list filter agrees with the agenda of *My day* (webui/leads/agenda.py)."""
    client = logged_in(app, ANNA)
    day = client.get("/my-day").get_data(as_text=True)
    on_my_day = {int(i) for i in re.findall(r'href="/leads/(\d+)"', day)}
    overdue = listed(client, "/leads?due=overdue")
    assert listed(client, "/leads?due_today=1") == on_my_day - overdue
    assert on_my_day - overdue == ids_of(seeded, "a2-due-today", "a5-resubmission")


def test_new_list_filters_reject_garbage(app: Flask) -> None:
    client = logged_in(app, ADMIN)
    everything = listed(client, "/leads")
    for query in (
        "escalated=gestern",
        "escalated=99999-01-01",
        "escalation=stage9",
        "answered=vielleicht",
        "due_today=%3Cscript%3E",
        "escalated=" + "1" * 5000,
    ):
        assert listed(client, f"/leads?{query}") == everything, query
    assert listed(client, "/leads?answered=no") | listed(client, "/leads?answered=yes") == (
        everything
    )


def test_every_figure_links_with_known_filters_only(app: Flask) -> None:
    from mailgate.webui.leads.filters import FIELD_NAMES

    html = logged_in(app, ADMIN).get("/overview/").get_data(as_text=True)
    hrefs = [h.replace("&amp;", "&") for h in re.findall(r'href="(/leads\?[^"]+)"', html)]
    assert len(hrefs) >= 12
    for href in hrefs:
        assert set(parse_qs(urlsplit(href).query)) <= set(FIELD_NAMES), href


def test_the_list_names_the_overview_filters_in_its_chips(app: Flask, seeded: Seeded) -> None:
    client = logged_in(app, ADMIN)
    day = seeded.clock.now.astimezone(ZONE).date()

    def chips(query: str) -> list[str]:
        html = client.get(f"/leads?{query}").get_data(as_text=True)
        block = re.search(r'id="filter-chips".*?</ul>', html, re.S)
        return re.findall(r"<span>([^<]+)</span>", block[0]) if block else []

    assert chips(f"escalated={day.isoformat()}&escalation=stage2") == [
        f"Eskaliert am: {day:%d.%m.%Y}",
        "Eskalation: Stufe 2, an die Teamleitung",
    ]
    assert chips("due_today=1&answered=no") == ["Heute fällig: ja", "Beantwortet: nein"]


def test_query_count_does_not_grow_with_the_leads(
    app: Flask, dealer: sessionmaker[Session], seeded: Seeded
) -> None:
    """A handful of aggregate queries, not one per lead or per salesperson's lead."""
    from sqlalchemy import event

    client = logged_in(app, ADMIN)
    client.get("/overview/")  # warm: settings, session, compiled statements

    def statements() -> int:
        seen: list[str] = []
        engine = dealer.kw["bind"]

        def count(*_args: object) -> None:
            seen.append("q")

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/overview/").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    few = statements()
    c = seeded.clock
    with db.session_scope(dealer) as s:
        for n in range(300):
            owner = seeded.users[ANNA if n % 2 else BERT]
            lead = add(s, f"bulk{n}", owner, c.today, overdue_at=c.now - timedelta(minutes=n + 1),
                       answered_after=timedelta(minutes=n) if n % 3 else None)  # fmt: skip
            if n % 5 == 0:
                escalate(s, lead, "stage1", c.today)
    many = statements()
    assert many == few and few <= 30, (few, many)  # the whole page, the frame's queries too
    html = client.get("/overview/").get_data(as_text=True)
    assert [n for _, n in team_rows(html)["Anna Schmidt"]][:2] == [156, 51]  # answered: not late
