"""Words, not codes: no internal code, English word or raw id in the German UI.

The demo dealership (every source, kind, status and due state) is opened page by page as
each role would, and the *visible text* of every page — not attribute values, not the
customer's own message, not the template editor's source — is searched for what only a
developer would understand: source and kind codes, status codes, Python's ``None``,
undecoded MIME words, settings keys.  A salesperson's pages must not show the parser's
internals at all.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.demo import DEMO_PASSWORD, seed_demo
from mailgate.models import InboundMail, Lead, OutboxMail, User

from .webui_helpers import logged_in, web_app

# Codes that must never reach a German reader (word-bounded, case-sensitive where it matters).
CODES = re.compile(
    r"\b(?:unknown|Unknown|Walk-in|walk_in|None|True|False|test_drive|trade_in|"
    r"oem:[a-z_]+|kleinanzeigen|autoscout24|mobile_de|send_mails|reply_mode|pool_user|"
    r"assigned|contacted|resubmission|quarantined|discarded|processed|salesperson|supervisor|"
    r"bought_elsewhere|no_interest|not_reached|left_message)\b"
    r"|=\?[\w.-]+\?[QqBb]\?"
)
INTERNALS = re.compile(r"\b(?:Parser|parser|Sicherheit \d|MIME|Content-Type|generic)\b")
SKIPPED_ELEMENTS = {"textarea", "script", "style", "code", "pre", "option", "template"}


class _VisibleText(HTMLParser):
    """The text a reader sees: skips the customer's message (``pre``), editors and code."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping: str | None = None  # the tag whose content is skipped
        self._depth = 0  # how deep in nested tags of that name
        self._glue = False  # the next text continues the last word (after a <wbr>)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "wbr":  # a break opportunity inside a word, no space
            self._glue = True
            return
        if self._skipping is not None:
            self._depth += tag == self._skipping
            return
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        # the customer's words, and the admins' "technical details" (codes on purpose)
        quoted = "customer-text" in classes or attributes.get("id") == "technical"
        if tag in SKIPPED_ELEMENTS or quoted:
            self._skipping, self._depth = tag, 1

    def handle_endtag(self, tag: str) -> None:
        if tag == self._skipping:
            self._depth -= 1
            if self._depth == 0:
                self._skipping = None

    def handle_data(self, data: str) -> None:
        if self._skipping is None:
            if self._glue and self.parts:
                self.parts[-1] += data
            else:
                self.parts.append(data)
        self._glue = False


# Addresses and domain names are names, not codes (mobile.de, kleinanzeigen.de, a@b.example).
ADDRESSES = re.compile(r"[\w.+-]+@[\w.-]+|\b[\w-]+(?:\.[\w-]+)+\b")


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(ADDRESSES.sub(" ", " ".join(parser.parts)).split())


def _codes_on(client: FlaskClient, paths: list[str], pattern: re.Pattern[str]) -> dict[str, list]:
    found: dict[str, list] = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        text = visible_text(response.get_data(as_text=True))
        hits = sorted({m.group(0) for m in pattern.finditer(text)})
        if hits:
            at = pattern.search(text)
            assert at is not None
            found[path] = [*hits, text[max(0, at.start() - 60) : at.end() + 60]]
    return found


def report(found: dict[str, list]) -> str:
    """One line per page: the codes found and where (pytest would cut a dict short)."""
    return "\n".join(f"{path}: {hits[:-1]} in ...{hits[-1]}..." for path, hits in found.items())


@pytest.fixture
def demo(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    seed_demo(factory, Settings())
    return factory


def test_visible_text_skips_what_is_not_the_uis_own_words() -> None:
    html = (
        "<p>Quelle: mobile.de</p><pre>None of your business</pre><textarea>{{ x }}</textarea>"
        "<select><option value='unknown'>Unbekannt</option></select><div class='customer-text'>"
        "unknown</div><p title='unknown'>Status: neu</p>"
        "<details id='technical'><p>None</p></details><p>a@<wbr>mail.<wbr>kleinanzeigen.de</p>"
    )
    assert visible_text(html) == "Quelle: Status: neu"
    assert CODES.search("Quelle: unknown") and CODES.search("Betreff =?utf-8?q?Gr=C3=BC=C3=9Fe?=")
    assert not CODES.search("Quelle: Unbekannt, Status: zugewiesen, Walkingstraße 3")


def test_no_codes_on_the_admins_pages(demo: sessionmaker[Session]) -> None:
    with demo() as session:
        leads = [f"/leads/{i}" for i in session.scalars(select(Lead.id))]
        inbound = [f"/inbound/{i}" for i in session.scalars(select(InboundMail.id))]
        outbox = [f"/outbox/{i}" for i in session.scalars(select(OutboxMail.id).limit(5))]
    client = logged_in(web_app(demo), "admin@demo.example", DEMO_PASSWORD)
    pages = [
        "/overview/",
        "/my-day",
        "/leads",
        "/pool",
        "/reports",
        "/inbound",
        "/outbox",
        "/customers",
        "/system/",
        "/settings/",
        "/settings/hours",
        "/settings/holidays",
        "/settings/escalation",
        "/settings/distribution",
        "/settings/users",
        "/settings/templates",
        *leads,
        *inbound,
        *outbox,
    ]
    found = _codes_on(client, pages, CODES)
    assert not found, report(found)


@pytest.mark.parametrize(
    "email", ["lena.verkauf@demo.example", "viktor.leitung@demo.example"], ids=["sales", "lead"]
)
def test_no_codes_and_no_internals_for_salespeople_and_supervisors(
    demo: sessionmaker[Session], email: str
) -> None:
    with demo() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        mine = [f"/leads/{i}" for i in session.scalars(select(Lead.id))]
    client = logged_in(web_app(demo), email, DEMO_PASSWORD)
    pages = ["/my-day", "/leads", "/pool", "/customers", *mine]
    if user.role == "supervisor":
        pages += ["/overview/", "/reports"]
    visible = [p for p in pages if client.get(p).status_code == 200]
    assert visible, "the role sees its pages"
    found = _codes_on(client, visible, CODES) | _codes_on(client, visible, INTERNALS)
    assert not found, report(found)
