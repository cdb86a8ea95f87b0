"""The lead list as a salesperson arranges it (issue 20 item 13, seeds 001 and 004): sortable
column headers, page size and columns remembered per user, vehicle and phone columns, the
active filters as removable chips, and bulk deletion of open leads for admins.  Both databases."""

# ruff: noqa: F811 - app, team: fixtures of test_webui_leads
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import Lead, User

from .test_webui_leads import EMAILS, app, body, listed, make_lead, team  # noqa: F401
from .webui_helpers import csrf_token, logged_in


def headers(page: str) -> list[str]:
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return [
        " ".join(re.sub(r"<[^>]+>", " ", h).split())
        for h in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)
    ]


def save_view(client, columns: list[str], page_size: str, back: str = "") -> None:  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/leads")
    data = {"csrf_token": token, "columns": columns, "page_size": page_size, "back": back}
    response = client.post("/leads/view", data=data)
    assert response.status_code == 302


def test_headers_sort_and_say_which_way(app: Flask, team: sessionmaker[Session]) -> None:
    ids = [make_lead(team, "anna", name=name) for name in ("Zora Zett", "Anton Acker", "Mia Mitte")]
    anna = logged_in(app, EMAILS["anna"])
    page = body(anna, "/leads?sort=customer&status=open")
    assert listed(anna, "/leads?sort=customer&status=open") == [ids[1], ids[2], ids[0]]
    assert re.search(r'<th scope="col" aria-sort="ascending"><a href="[^"]*sort=customer', page)
    received = re.search(
        r'<th scope="col"[^>]*><a href="([^"]+)"[^>]*>Eingang</a>', body(anna, "/leads")
    )
    assert received is not None
    link = parse_qs(urlsplit(received.group(1).replace("&amp;", "&")).query)
    assert link["sort"] == ["oldest"]  # newest is the default: the header turns it round
    oldest_first = listed(anna, received.group(1).replace("&amp;", "&"))
    assert oldest_first == ids[::-1]  # each lead of make_lead is a minute older
    kept = re.search(r'<a href="([^"]+)" class="sort[^"]*">Kunde</a>', page)
    assert kept is not None and "status=open" in kept.group(1)  # the filter stays


def test_columns_and_page_size_are_remembered_per_user(
    app: Flask, team: sessionmaker[Session]
) -> None:
    make_lead(team, "ben")
    for n in range(30):
        make_lead(team, "anna", phone=f"0171 555{n:04d}", vehicle={"make": "VW", "model": "Golf"})
    anna = logged_in(app, EMAILS["anna"])
    assert "Seite 1 von 1" in body(anna, "/leads")  # 50 a page by default
    save_view(anna, ["vehicle", "phone", "due"], "25", back="status=open")
    page = body(anna, "/leads")
    assert headers(page) == ["Kunde", "Fahrzeug", "Telefon", "Fälligkeit"]
    assert "Seite 1 von 2" in page and "VW Golf" in page and "0171 5550000" in page
    ben = logged_in(app, EMAILS["ben"])
    defaults = headers(body(ben, "/leads"))  # Anna's choice is hers; Ben has the defaults
    assert defaults == [
        "Kunde",
        "Art",
        "Status",
        "Zuständig",
        "Quelle",
        "Fahrzeug",
        "Eingang",
        "Wartet seit",
        "Fälligkeit",
    ]
    with team() as session:
        prefs = session.scalar(select(User.list_prefs).where(User.email == EMAILS["anna"]))
    assert prefs == {"columns": ["vehicle", "phone", "due"], "page_size": 25}


def test_a_hostile_view_choice_falls_back_to_the_defaults(
    app: Flask, team: sessionmaker[Session]
) -> None:
    make_lead(team, "anna")
    anna = logged_in(app, EMAILS["anna"])
    save_view(anna, ["__class__", "customer; DROP TABLE lead", "phone"], "999999")
    page = body(anna, "/leads")
    assert headers(page)[-1] == "Telefon" and "Seite 1 von 1" in page
    with team() as session:
        user = session.scalar(select(User).where(User.email == EMAILS["anna"]))
        assert user is not None
        user.list_prefs = {"columns": "phone", "page_size": "lots"}  # a stale, odd value
        session.commit()
    assert "Kunde" in headers(body(anna, "/leads"))  # the defaults, no error
    token = csrf_token(anna, "/leads")
    assert anna.post("/leads/view", data={"page_size": "25"}).status_code == 400  # no CSRF
    moved = anna.post("/leads/view", data={"csrf_token": token, "back": "//evil.example"})
    assert moved.status_code == 302 and urlsplit(moved.headers["Location"]).path == "/leads"
    assert "evil" not in moved.headers["Location"]


def test_active_filters_show_as_chips_that_remove_one_filter(
    app: Flask, team: sessionmaker[Session]
) -> None:
    make_lead(team, "anna", kind="test_drive")
    anna = logged_in(app, EMAILS["anna"])
    page = body(anna, "/leads?status=open&kind=test_drive&q=Kunde&sort=customer")
    chips = dict(
        (" ".join(text.split()), href.replace("&amp;", "&"))
        for href, text in [
            (m.group(2), m.group(1))
            for m in re.finditer(r'<li[^>]*><span>([^<]+)</span> <a [^>]*href="([^"]+)"', page)
        ]
    )
    assert set(chips) == {"Status: offen", "Art: Probefahrt", "Suche: Kunde"}
    without_status = parse_qs(urlsplit(chips["Status: offen"]).query)
    assert without_status == {"kind": ["test_drive"], "q": ["Kunde"], "sort": ["customer"]}
    assert 'id="filter-chips"' not in body(anna, "/leads?sort=customer")  # a sort is no filter


def test_admins_delete_open_leads_in_bulk(app: Flask, team: sessionmaker[Session]) -> None:
    open_ids = [make_lead(team, "anna") for _ in range(2)]
    closed = make_lead(team, "anna", status="closed")
    ada = logged_in(app, EMAILS["ada"])
    assert 'id="bulk-delete"' in body(ada, "/leads")
    token = csrf_token(ada, "/leads")

    def delete(ids: list[int], confirm: bool = True):  # type: ignore[no-untyped-def]
        data: dict[str, object] = {"csrf_token": token, "lead_ids": [str(i) for i in ids]}
        if confirm:
            data["confirm_delete"] = "y"
        return ada.post("/leads/delete", data=data)

    assert delete(open_ids, confirm=False).status_code == 302
    assert delete([*open_ids, closed]).status_code == 302  # all or nothing
    with team() as session:
        assert {
            s for (s,) in session.execute(select(Lead.status).where(Lead.id.in_(open_ids)))
        } == {"assigned"}
    assert delete(open_ids).status_code == 302
    with team() as session:
        statuses = dict(session.execute(select(Lead.id, Lead.status)).all())
    assert [statuses[i] for i in open_ids] == ["deleted", "deleted"] and statuses[
        closed
    ] == "closed"
    anna = logged_in(app, EMAILS["anna"])
    assert 'id="bulk-delete"' not in body(anna, "/leads")
    token = csrf_token(anna, "/leads")
    refused = anna.post(
        "/leads/delete", data={"csrf_token": token, "lead_ids": ["1"], "confirm_delete": "y"}
    )
    assert refused.status_code == 403
