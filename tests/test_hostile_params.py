"""Hostile input (issue 16, item 10): every route of the URL map, every method, as admin, as
a salesperson and anonymous, with hostile path values, query parameters and form fields, is
answered without a server error and without a traceback.  Both databases (PostgreSQL raises
a DataError for an id beyond its ``integer``, SQLite's driver an OverflowError).

Routes, parameter names and form fields are taken from the app itself — ``app.url_map``,
the ``request.args`` names in the code and the fields of every WTForms form — so a route
or a field added tomorrow is swept the day it is added.  CSRF protection is off in this
app (it is tested in test_security_web.py): with it, every POST would stop at the token
and the handlers behind it would never see the hostile values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.routing import Rule
from wtforms.fields.core import UnboundField

from mailgate import db
from mailgate.models import (
    AnswerTemplate,
    Customer,
    DealerSetting,
    InboundMail,
    InboundRaw,
    Lead,
    OutboxMail,
    Webhook,
    utcnow,
)
from mailgate.webui.api.tokens import create_token

from .conftest import long_tier
from .webui_helpers import ensure_user, login, web_app

ROOT = Path(__file__).resolve().parent.parent
ADMIN, ANNA = "admin@autohaus.example", "anna@autohaus.example"
ROLES = ("admin", "salesperson", "anonymous")
SKIPPED = {"accounts.logout"}  # it ends the sweep's own session (and has no input)

# Known-bad values, as bytes (percent-encoded into paths, query strings and form bodies).
KNOWN_BAD: tuple[bytes, ...] = (
    b"99999999999999999999999",
    b"2147483648",
    b"9223372036854775808",
    b"-1",
    b"0",
    b"1e9",
    b"1.5",
    b"0x10",
    "٣".encode(),
    "１２".encode(),
    b" 1",
    "ä€😀".encode(),
    "ä€😀.x".encode(),
    b"\xff",
    b"\xc3\x28",
    b"\x00",
    b"a\x00b",
    b"x" * 5000,
    b"../../etc/passwd",
    b"<script>alert(1)</script>",
    b"' OR 1=1 --",
    b"{{7*7}}",
    b"9999-99-99",
    b"0000-01-01",
    b"0001-01-01",
    b"10000-01-01",
    b"9999-12-31",
    b"2026-02-30",
    b"2026-11-30T25:61",
    b"9999-12-31T23:59",
    b"0001-01-01T00:00",
    b"1e309",
    b"NaN",
    b"[]",
    b"",
)
DATES = (b"9999-12-31", b"0001-01-01", b"9999-99-99", b"0000-01-01", b"2026-02-30")


def _query_names() -> list[str]:
    """Every query parameter name the web UI reads (``args.get("…")``, ``args["…"]``)."""
    pattern = re.compile(r"""args(?:\.get\(|\[)\s*["']([A-Za-z_]+)["']""")
    found = {
        name
        for path in (ROOT / "webui").rglob("*.py")
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    }
    return sorted(found | {"start", "end", "page", "per_page", "received_from", "received_to"})


def _form_classes(base: type) -> Iterator[type]:
    for sub in base.__subclasses__():
        yield sub
        yield from _form_classes(sub)


def _form_fields() -> list[str]:
    """Every field name of every form of the web UI (imported by the app factory)."""
    names = {
        name
        for form in _form_classes(FlaskForm)
        for name in dir(form)
        if isinstance(getattr(form, name, None), UnboundField)
    }
    return sorted(names | {"next", "back", "action", "form"})


@dataclass
class World:
    factory: sessionmaker[Session]
    app: Flask
    ids: dict[str, str]  # a real value for every path argument
    clients: dict[str, FlaskClient] = field(default_factory=dict)
    token: str = ""

    def client(self, role: str) -> FlaskClient:
        client = self.clients.get(role)
        if client is None:
            client = self.clients[role] = self.app.test_client()
            if role != "anonymous":
                login(client, ADMIN if role == "admin" else ANNA)
        return client

    def still_logged_in(self, role: str) -> None:
        """After a POST (a hostile one may change the account): log in again if it ended
        the session, so the rest of the sweep still runs with the role's rights."""
        client = self.clients.get(role)
        if role != "anonymous" and client and client.get("/account").status_code != 200:
            del self.clients[role]


@pytest.fixture
def world(dealer: sessionmaker[Session]) -> World:
    ensure_user(dealer, ADMIN, "admin")
    anna = ensure_user(dealer, ANNA, "salesperson")
    with db.session_scope(dealer) as session:
        customer = Customer(name="Karl Kunde", email="karl@kunden.example")
        session.add(customer)
        session.flush()
        lead = Lead(
            dedupe_key="hostile-1",
            reply_token="hostile-token-1",
            customer_id=customer.id,
            assignee_id=anna,
            status="assigned",
            received_at=utcnow() - timedelta(hours=3),
        )
        session.add(lead)
        session.flush()
        raw = b"From: karl@kunden.example\r\nSubject: Anfrage\r\n\r\nHallo\r\n"
        inbound = InboundMail(
            channel="smtp",
            envelope_from="karl@kunden.example",
            envelope_to=["leads@autohaus.example"],
            size=len(raw),
            sha256="0" * 64,
            message_id="<hostile@kunden.example>",
            status="quarantined",
            status_reason="test",
            lead_id=lead.id,
        )
        session.add(inbound)
        session.flush()
        session.add(InboundRaw(inbound_id=inbound.id, raw=raw))
        outbox = OutboxMail(
            idempotency_key="hostile-outbox",
            purpose="notification",
            lead_id=lead.id,
            mail_from="leads@autohaus.example",
            recipients=[ANNA],
            subject="[Lead] x",
            message_id="<hostile-out@autohaus.example>",
            raw=b"Subject: x\r\n\r\nx\r\n",
            status="dead",
        )
        session.add(outbox)
        token_row, token = create_token(session, "hostile", ["read", "write"])
        # a destination that refuses at once, should a sweep send the webhook a test event
        hook = Webhook(name="crm", url="http://127.0.0.1:9/hook", secret="s" * 32, events=[])
        session.add(hook)
        answer = AnswerTemplate(name="Angebot", language="de", subject="", body="Hallo")
        session.add(answer)
        session.flush()
        ids = {
            "lead_id": str(lead.id),
            "customer_id": str(customer.id),
            "inbound_id": str(inbound.id),
            "mail_id": str(inbound.id),  # the lead page's downloads: a mail of the lead
            "number": "1",
            "template_id": str(answer.id),
            "outbox_id": str(outbox.id),
            "user_id": str(anna),
            "token_id": str(token_row.id),
            "hook_id": str(hook.id),
            "name": "notification",
            "language": "de",
            "code": "en",
            "token": "x" * 40,
            "filename": "app.css",
        }
        # the one base URL (on the test client's host): features that mail links work
        row = session.get(DealerSetting, "dealer")
        assert row is not None
        row.data = {**row.data, "base_url": "http://localhost"}
    app = web_app(dealer)
    app.config["WTF_CSRF_ENABLED"] = False
    return World(dealer, app, ids, token=token)


def _rules(app: Flask) -> list[tuple[Rule, str]]:
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    return [
        (rule, method)
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
        for method in methods
        if method in (rule.methods or ()) and rule.endpoint not in SKIPPED
    ]


def _path(rule: Rule, values: dict[str, bytes]) -> str:
    path = rule.rule
    for arg in rule.arguments:
        encoded = quote_from_bytes(values[arg], safe="")
        path = re.sub(rf"<(?:[a-z_]+(?:\([^)]*\))?:)?{arg}>", encoded, path)
    return path


def _encode(pairs: list[tuple[str, bytes]]) -> str:
    return "&".join(
        f"{quote_from_bytes(k.encode(), safe='')}={quote_from_bytes(v, safe='')}" for k, v in pairs
    )


@dataclass
class Sweep:
    world: World
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def fail(self, rule: Rule, method: str, what: str, where: str) -> None:
        """Record a failure once per route, method and kind (the report stays readable)."""
        key = (rule.endpoint, method, what)
        if key not in self.seen:
            self.seen.add(key)
            self.failures.append(f"{where}: {what}")

    def request(
        self,
        role: str,
        rule: Rule,
        method: str,
        path_values: dict[str, bytes],
        query: list[tuple[str, bytes]],
        form: list[tuple[str, bytes]] | None = None,
        json_body: bytes | None = None,
    ) -> int:
        """One request; a 5xx, an exception or a traceback is recorded as a failure.  The
        status, with 403 for any refusal of the role (401, 403, redirect to the login)."""
        client = self.world.client(role)
        url = _path(rule, path_values)
        if query:
            url += "?" + _encode(query)
        headers = {}
        if rule.rule.startswith("/api/") and role != "anonymous":
            headers["Authorization"] = f"Bearer {self.world.token}"
        kwargs: dict[str, object] = {"method": method, "headers": headers}
        if json_body is not None:
            kwargs.update(data=json_body, content_type="application/json")
        elif method != "GET" and form is not None:
            kwargs.update(data=_encode(form), content_type="application/x-www-form-urlencoded")
        where = f"{role} {method} {url[:160]!r}"
        try:
            response = client.open(url, **kwargs)  # type: ignore[arg-type]
            body = response.get_data()  # a streamed body (CSV) runs its generator here
            response.close()
        except Exception as exc:  # noqa: BLE001 - TESTING propagates what would be a 500
            self.fail(rule, method, f"{type(exc).__name__}: {str(exc)[:200]}", where)
            return 500
        finally:
            if method != "GET":
                self.world.still_logged_in(role)
        self.answered += 1
        if response.status_code >= 500:
            self.fail(rule, method, str(response.status_code), where)
        elif b"Traceback (most recent call last)" in body:
            self.fail(rule, method, "a traceback in the body", where)
        turned_away = response.status_code in (401, 403) or (
            response.status_code == 302 and "/login" in response.headers.get("Location", "")
        )
        return 403 if turned_away else response.status_code


QUERY_NAMES = _query_names()


def _known_bad(short: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The short list in the fast tier, all of KNOWN_BAD in the long tier."""
    return KNOWN_BAD if long_tier() else short


# the values that found a server error before the fix, and one of each kind besides
PATH_BAD = _known_bad(
    (
        b"99999999999999999999999",
        b"2147483648",
        b"-1",
        b"1e9",
        "٣".encode(),
        "ä€😀".encode(),
        "ä€😀.x".encode(),
        b"\xff",
        b"x" * 600,
    )
)
PARAM_BAD = _known_bad(
    (
        b"99999999999999999999999",
        b"-1",
        b"9999-12-31",
        b"0001-01-01",
        b"2026-02-30",
        b"9999-12-31T23:59",
        b"0001-01-01T00:00",
        "ä€😀".encode(),
        b"\xff",
        b"x" * 5000,
        b"\x00",
    )
)


def test_every_path_argument_refuses_hostile_values(world: World) -> None:
    """Every route with path arguments × method, as admin and as a salesperson: each bad
    value in each argument (the others real, so the handler reads the bad one)."""
    sweep = Sweep(world)
    real = {k: v.encode() for k, v in world.ids.items()}
    routes = [(rule, method) for rule, method in _rules(world.app) if rule.arguments]
    expected = 0
    for rule, method in routes:
        for arg in sorted(rule.arguments):
            for role in ("admin", "salesperson"):
                for bad in PATH_BAD:
                    sweep.request(role, rule, method, {**real, arg: bad}, [])
                    expected += 1
    assert not sweep.failures, "\n".join(sweep.failures[:40])
    assert len(routes) > 30 and sweep.answered == expected


def test_every_route_refuses_hostile_parameters_and_fields(world: World) -> None:
    """Every route × method × role with real ids: each bad value in every query parameter the
    code reads (and ``page`` repeated) and in every form field.  A route that turns the role
    away (login page, 403) is asked once: its handler never sees the values."""
    form_fields = _form_fields()
    sweep = Sweep(world)
    real = {k: v.encode() for k, v in world.ids.items()}
    for rule, method in _rules(world.app):
        for role in ROLES:
            for bad in PARAM_BAD:
                query = [(name, bad) for name in QUERY_NAMES] + [("page", b"2"), ("page", bad)]
                form = [(name, bad) for name in form_fields]
                status = sweep.request(role, rule, method, real, query, form)
                if status == 403:
                    break  # turned away before any input is read
    assert not sweep.failures, "\n".join(sweep.failures[:40])
    assert sweep.answered > 500


@pytest.mark.parametrize("value", DATES)
def test_out_of_range_dates_in_filters_are_no_server_error(world: World, value: bytes) -> None:
    """Date filters: the list ignores a date it cannot use, the reports say which dates they
    take next to the field, the API reads a real date beyond 1900..2999 as that bound (the
    same leads) and refuses a non-date with a problem document."""
    admin = world.client("admin")
    text = value.decode()
    assert admin.get(f"/leads?date_from={text}&date_to={text}").status_code == 200
    assert admin.get(f"/leads/export.csv?date_to={text}").status_code == 200
    page = admin.get(f"/reports?start={text}&end={text}")
    assert page.status_code == 200
    assert admin.get(f"/reports.csv?table=sources&start={text}").status_code == 200
    headers = {"Authorization": f"Bearer {world.token}"}
    response = admin.get(f"/api/v1/leads?received_from={text}", headers=headers)
    if text in ("9999-12-31", "0001-01-01"):  # dates: the range's bounds
        assert "1900-01-01" in page.get_data(as_text=True)  # the reports' field error
        assert response.status_code == 200, response.data
        assert response.json["total"] == (1 if text == "0001-01-01" else 0)
        later = admin.get(f"/api/v1/leads?received_to={text}", headers=headers)
        assert later.json["total"] == (1 if text == "9999-12-31" else 0)
    else:
        assert response.status_code == 400, response.data
        assert response.mimetype == "application/problem+json"
        assert "2026-11-30" in response.json["detail"]


@pytest.mark.parametrize("when", ["9999-12-31T23:59", "0001-01-01T00:00", "10000-01-01T00:00"])
def test_date_fields_out_of_range_are_a_form_error(world: World, when: str) -> None:
    """The salesperson's own lead: a resubmission or due date no time zone can shift is a
    field error on the lead page, and nothing changes."""
    anna, lead = world.client("salesperson"), int(world.ids["lead_id"])
    with world.factory() as session:
        before = session.get(Lead, lead).overdue_at  # type: ignore[union-attr]
    for action in ("resubmission", "due"):
        response = anna.post(f"/leads/{lead}/{action}", data={"when": when})
        assert response.status_code in (302, 400), (action, response.status_code)
    with world.factory() as session:
        assert session.get(Lead, lead).overdue_at == before  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "path",
    [
        "/leads/99999999999999999999999",
        "/leads/2147483648",
        "/leads/-1",
        "/leads/1e9",
        "/leads/%D9%A3",
        "/inbound/9223372036854775808",
        "/outbox/2147483648",
        "/settings/users/2147483648",
        "/api/v1/leads/2147483648",
        "/m/%C3%A4%E2%82%AC%F0%9F%98%80",
    ],
)
def test_ids_and_tokens_no_database_can_hold_are_not_found(world: World, path: str) -> None:
    headers = {"Authorization": f"Bearer {world.token}"}
    response = world.client("admin").get(path, headers=headers)
    assert response.status_code in (400, 404, 410), (path, response.status_code)


def test_a_nul_character_is_refused_with_a_clear_message(world: World) -> None:
    for who in ("admin", "anonymous"):
        for path in ("/leads?q=Karl%00", "/leads/export.csv?source=%00", "/login?next=%00"):
            response = world.client(who).get(path)
            assert response.status_code == 400, (who, path)
            assert "NUL-Zeichen" in response.get_data(as_text=True)  # the German UI says why


@pytest.mark.parametrize("depth", [100_000, 30_000, 33])
def test_deeply_nested_json_is_a_bad_request(world: World, depth: int) -> None:
    """100,000 nested brackets: refused for its size (413); 30,000 and 33 levels: refused
    for their depth (400), before the parser recurses."""
    body = b"[" * depth + b"]" * depth
    headers = {"Authorization": f"Bearer {world.token}"}
    lead = world.ids["lead_id"]
    for path in (f"/api/v1/leads/{lead}/status", f"/api/v1/leads/{lead}/notes"):
        response = world.app.test_client().post(
            path, data=body, content_type="application/json", headers=headers
        )
        assert response.status_code == (413 if len(body) > 64 * 1024 else 400), path
        assert response.mimetype == "application/problem+json"
        assert response.json["status"] == response.status_code


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": 5}',
        b'{"text": ["a"]}',
        b'{"text": {"a": 1}}',
        b'{"status": null}',
        b'{"status": 1e400}',
        b'{"status": "closed", "reason": []}',
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b'{"text": "\\ud800"}',
        b"{",
    ],
)
def test_wrong_types_in_json_bodies_are_a_bad_request(world: World, body: bytes) -> None:
    headers = {"Authorization": f"Bearer {world.token}"}
    lead = world.ids["lead_id"]
    for path in (f"/api/v1/leads/{lead}/status", f"/api/v1/leads/{lead}/notes"):
        response = world.app.test_client().post(
            path, data=body, content_type="application/json", headers=headers
        )
        assert response.status_code in (400, 422), (path, body, response.status_code)
        assert response.mimetype == "application/problem+json"


# --- hypothesis: random routes, roles and values -------------------------------------------

HOSTILE = st.one_of(
    st.sampled_from(KNOWN_BAD),
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers().map(lambda n: str(n).encode()),
    st.floats().map(lambda f: str(f).encode()),
    st.dates().map(lambda d: d.isoformat().encode()),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_hostile_requests_to_random_routes(world: World, data: st.DataObject) -> None:
    """Hypothesis draws a route, method, role, path values, query pairs (repeated names
    included) and form fields; every answer is below 500 and without a traceback."""
    rules = _rules(world.app)
    rule, method = data.draw(st.sampled_from(rules), label="route")
    role = data.draw(st.sampled_from(ROLES), label="role")
    real = {k: v.encode() for k, v in world.ids.items()}
    path_values = {
        arg: data.draw(st.one_of(st.just(real[arg]), HOSTILE), label=arg) for arg in rule.arguments
    }
    names = st.one_of(st.sampled_from(QUERY_NAMES), st.text(min_size=1, max_size=10))
    query = data.draw(st.lists(st.tuples(names, HOSTILE), max_size=6), label="query")
    form = data.draw(
        st.lists(st.tuples(st.sampled_from(_FORM_FIELDS), HOSTILE), max_size=8), label="form"
    )
    sweep = Sweep(world)
    sweep.request(role, rule, method, path_values, query, form)
    assert not sweep.failures, sweep.failures


_FORM_FIELDS = _form_fields()
