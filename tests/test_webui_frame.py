"""The frame of every page: the dealer's name and favicon in the header, the menu's entries
and its live overdue count (webui/base.html, webui/nav.py, webui/live.py), the form macro.

Team: Anna sells under Carl Chef, Bert sells in no team, Ada is the admin.  Both databases.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_login import login_user
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from wtforms import BooleanField, Form, SelectField, StringField

from mailgate import db
from mailgate.config import ConfigError, Settings, WebSettings, load_settings
from mailgate.dealer_settings import apply_document, export_settings
from mailgate.models import Lead, User, utcnow
from mailgate.webui import context, live
from mailgate.webui.access import Account
from mailgate.webui.choices import options

from .test_webui_accounts import add_lead
from .webui_helpers import ensure_user, logged_in, web_app

ADA, ANNA, CHEF, BERT = (
    "ada@autohaus.example",
    "anna@autohaus.example",
    "chef@autohaus.example",
    "bert@autohaus.example",
)
BADGE = re.compile(
    r'<span class="nav-live" id="nav-overdue" hx-get="/live/overdue" hx-trigger="every 30s"'
    r' hx-swap="innerHTML">(.*?)</span>\s*</li>',
    re.S,
)


def change_dealer(factory: sessionmaker[Session], section: str, **values: object) -> None:
    """Change keys of one section of the stored dealer settings, as the settings pages do."""
    with db.session_scope(factory) as session:
        document = tomllib.loads(export_settings(session))
        document[section].update(values)
        apply_document(session, document)


@pytest.fixture
def app(dealer: sessionmaker[Session]) -> Flask:
    ensure_user(dealer, ADA, "admin", name="Ada Admin")
    ensure_user(dealer, ANNA, "salesperson", supervisor_email=CHEF, name="Anna Schmidt")
    ensure_user(dealer, CHEF, "supervisor", name="Carl Chef")
    ensure_user(dealer, BERT, "salesperson", name="Bert Berger")
    return web_app(dealer)


def text(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def overdue_lead(factory: sessionmaker[Session], owner: str, n: int) -> int:
    past = utcnow() - timedelta(hours=2)
    return add_lead(factory, owner, n, soon_at=past - timedelta(hours=1), overdue_at=past)


# ---- dealer name, favicon ----


def test_the_favicon_is_served_and_linked(app: Flask) -> None:
    client = app.test_client()
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data(as_text=True).lstrip().startswith("<svg")
    assert "<script" not in icon.get_data(as_text=True)  # an image, nothing that runs
    login = text(client, "/login")
    assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in login


def test_the_dealers_name_is_in_the_header_and_the_title(app: Flask) -> None:
    page = text(logged_in(app, ANNA), "/account")
    brand = page.split('class="navbar-brand brand"', 1)[1].split("</a>", 1)[0]
    assert '<span class="brand-name">Autohaus Beispiel</span>' in brand
    assert "<title>Mein Konto · Autohaus Beispiel</title>" in page
    login = text(app.test_client(), "/login")  # before login too, in the card as well
    assert login.count("Autohaus Beispiel") >= 3  # title, header, card


def test_without_a_dealer_name_the_header_says_mailgate(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    change_dealer(dealer, "dealer", name="  ")
    page = text(app.test_client(), "/login")
    assert '<span class="brand-name">mailgate</span>' in page
    assert "<title>Anmelden · mailgate</title>" in page


def test_a_dealer_name_with_markup_is_shown_as_text(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    change_dealer(dealer, "dealer", name=hostile)
    for client, path in ((app.test_client(), "/login"), (logged_in(app, ANNA), "/account")):
        page = text(client, path)
        assert "<script>alert" not in page and "<img src=x" not in page, path
        escaped = (
            "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        )
        assert f'<span class="brand-name">{escaped}</span>' in page, path


def test_the_name_falls_back_when_the_database_cannot_answer(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frame is also drawn for the busy-database page: no second error from the header."""

    def busy() -> None:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    with app.test_request_context("/"):
        assert context.dealer_name() == "Autohaus Beispiel"
        monkeypatch.setattr(context, "dealer", busy)
        assert context.dealer_name() == "mailgate"


# ---- the menu ----


def nav_links(page: str) -> list[str]:
    menu = page.split('<ul class="navbar-nav app-nav">', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'<a class="nav-link" href="([^"]+)"', menu)


def test_pool_is_in_the_menu_only_when_there_is_a_pool(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    anna = logged_in(app, ANNA)
    links = nav_links(text(anna, "/account"))
    assert "/leads" in links and "/my-day" in links and "/pool" not in links
    change_dealer(dealer, "distribution", pool_user=CHEF)
    assert "/pool" in nav_links(text(anna, "/account"))


def test_the_menu_follows_the_role(app: Flask) -> None:
    anna = nav_links(text(logged_in(app, ANNA), "/account"))
    ada = nav_links(text(logged_in(app, ADA), "/account"))
    assert "/settings/" not in anna and "/settings/" in ada
    assert "/inbound" not in anna and "/inbound" in ada


# ---- the overdue count ----


def badge_count(page: str) -> int:
    """The number in the menu's badge (0: no badge)."""
    found = BADGE.search(page)
    assert found, "the badge's live container is missing"
    number = re.search(r'href="/leads\?due=overdue">(\d+)<span class="visually-hidden">', found[1])
    return int(number[1]) if number else 0


def test_the_overdue_badge_counts_only_the_users_scope(
    app: Flask, dealer: sessionmaker[Session]
) -> None:
    overdue_lead(dealer, ANNA, 1)
    overdue_lead(dealer, ANNA, 2)
    overdue_lead(dealer, BERT, 3)
    add_lead(dealer, ANNA, 4)  # not overdue: no clock at all
    future = utcnow() + timedelta(hours=5)
    add_lead(dealer, BERT, 5, soon_at=future, overdue_at=future)  # not yet due
    closed = overdue_lead(dealer, ANNA, 6)
    with db.session_scope(dealer) as session:
        lead = session.get(Lead, closed)
        assert lead is not None
        lead.status = "closed"  # closed leads are never overdue
    expected = {ANNA: 2, BERT: 1, CHEF: 2, ADA: 3}  # Carl sees his team (Anna), Ada all
    for who, count in expected.items():
        client = logged_in(app, who)
        fragment = client.get("/live/overdue")
        assert fragment.status_code == 200 and fragment.headers["Cache-Control"] == "no-store"
        body = fragment.get_data(as_text=True)
        assert f'href="/leads?due=overdue">{count}<span class="visually-hidden">' in body, who
        noun = "überfällige Anfrage" if count == 1 else "überfällige Anfragen"
        assert f"> {noun}</span>" in body, who
        assert badge_count(text(client, "/account")) == count, who  # the same in the page
        # the badge's link shows exactly these leads
        listed = text(client, "/leads?due=overdue")
        rows = set(re.findall(r'href="/leads/(\d+)"', listed))
        assert len(rows) == count, (who, rows)


def test_no_badge_when_nothing_is_overdue(app: Flask, dealer: sessionmaker[Session]) -> None:
    add_lead(dealer, ANNA, 1)
    anna = logged_in(app, ANNA)
    assert anna.get("/live/overdue").get_data(as_text=True).strip() == ""
    assert badge_count(text(anna, "/account")) == 0  # the container stays for the next poll


def test_the_overdue_count_needs_a_login(app: Flask, dealer: sessionmaker[Session]) -> None:
    overdue_lead(dealer, ANNA, 1)
    anonymous = app.test_client()
    plain = anonymous.get("/live/overdue")
    assert plain.status_code == 302 and "/login" in plain.headers["Location"]
    # htmx's poll after the session ended: 286 stops the polling, nothing is swapped in
    polled = anonymous.get("/live/overdue", headers={"HX-Request": "true"})
    assert polled.status_code == 286 and polled.get_data() == b""
    assert "nav-overdue" not in text(anonymous, "/login")  # no menu, no count before login


def test_the_overdue_count_takes_no_parameters(app: Flask, dealer: sessionmaker[Session]) -> None:
    """Whatever an attacker adds to the query, the count is the caller's own scope."""
    overdue_lead(dealer, BERT, 1)
    anna = logged_in(app, ANNA)
    for query in ("?user=bert@autohaus.example", "?assignee=4&scope=all", "?due=" + "x" * 5000):
        assert anna.get("/live/overdue" + query).get_data(as_text=True).strip() == ""


# ---- the form macro ----


class _Sample(Form):
    name = StringField("Name", render_kw={"class": "wide"})
    kind = SelectField("Art", choices=options([("a", "A")]))
    agree = BooleanField("Einverstanden")


def test_the_field_macro_renders_bootstrap_controls(app: Flask) -> None:
    form = _Sample()
    form.name.errors = ["Bitte einen Namen angeben."]
    template = (
        '{% from "_forms.html" import field %}'
        '{{ field(form.name, hint="Vor- und Nachname") }}{{ field(form.kind) }}'
        "{{ field(form.agree, id='agree-2') }}"
    )
    with app.test_request_context("/"):
        html = render_template_string(template, form=form)
    name = re.search(r"<input[^>]*id=\"name\"[^>]*>", html)
    assert name is not None
    assert 'class="wide form-control is-invalid"' in name[0]  # the form's own class kept
    assert 'aria-describedby="name-hint name-errors"' in name[0]
    assert 'aria-invalid="true"' in name[0]
    assert '<ul class="errors" id="name-errors"><li>Bitte einen Namen angeben.</li></ul>' in html
    assert '<p class="hint form-text" id="name-hint">Vor- und Nachname</p>' in html
    assert re.search(r'<select class="form-select" id="kind"', html)
    agree = html.split('class="field field-check form-check"', 1)[1]
    assert re.search(r'<input class="form-check-input" id="agree-2"', agree)
    assert '<label class="form-check-label" for="agree-2">Einverstanden</label>' in agree


# ---- the logo ([web] logo in the config file) ----

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def logo_app(factory: sessionmaker[Session], path: Path) -> Flask:
    """The web UI with ``[web] logo = path`` (call after the ``app`` fixture made the users)."""
    return web_app(factory, Settings(web=WebSettings(logo=str(path))))


def test_without_a_logo_the_header_shows_the_mailgate_mark(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/branding/logo").status_code == 404
    page = text(client, "/login")
    assert 'class="brand-mark"' in page and "/branding/logo" not in page


def test_a_configured_logo_is_in_the_header_and_served(
    app: Flask, dealer: sessionmaker[Session], tmp_path: Path
) -> None:
    (tmp_path / "logo.png").write_bytes(PNG)
    client = logo_app(dealer, tmp_path / "logo.png").test_client()
    page = text(client, "/login")
    src = re.search(r'<img src="(/branding/logo\?v=[0-9a-f]+)" alt="" class="brand-logo"', page)
    assert src, "no logo in the header"
    response = client.get(src[1])
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data == PNG
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_an_svg_logo_runs_nothing(
    app: Flask, dealer: sessionmaker[Session], tmp_path: Path
) -> None:
    """An SVG may hold a script: served under a policy that runs none, sandboxed."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    (tmp_path / "logo.svg").write_bytes(svg)
    response = logo_app(dealer, tmp_path / "logo.svg").test_client().get("/branding/logo")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("logo.png", b"<html><script>alert(1)</script></html>"),  # not what its name says
        ("logo.png", PNG + b"\x00" * (512 * 1024)),  # too large
        ("missing.png", None),  # not there (any more)
    ],
)
def test_an_unusable_logo_is_left_out(
    app: Flask, dealer: sessionmaker[Session], tmp_path: Path, name: str, content: bytes | None
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    client = logo_app(dealer, tmp_path / name).test_client()
    assert client.get("/branding/logo").status_code == 404
    page = text(client, "/login")
    assert "/branding/logo" not in page and 'class="brand-mark"' in page


def test_the_logo_must_be_an_image_file_by_its_name(tmp_path: Path) -> None:
    config = tmp_path / "mailgate.toml"
    config.write_text('[web]\nlogo = "/etc/passwd"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[web\] logo must be a .png"):
        load_settings(str(config), environ={})
    config.write_text('[web]\nlogo = "/srv/autohaus/Logo.SVG"\n', encoding="utf-8")
    assert load_settings(str(config), environ={}).web.logo == "/srv/autohaus/Logo.SVG"


def test_the_frame_survives_a_database_that_cannot_answer(
    app: Flask, dealer: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The busy-database page is drawn in the frame: the badge and the pool entry are left
    out instead of failing a second time."""
    overdue_lead(dealer, ANNA, 1)
    change_dealer(dealer, "distribution", pool_user=CHEF)

    def busy(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    with app.test_request_context("/"):
        user = context.db().scalar(select(User).where(User.email == ANNA))
        assert user is not None
        login_user(Account.of(user))
        assert live.overdue_count() == 1 and context.pool_configured() is True
        monkeypatch.setattr(live, "lead_scope", busy)
        monkeypatch.setattr(context, "dealer", busy)
        assert live.overdue_count() == 0
        assert context.pool_configured() is False
