"""Web UI security rows W2 (pages), W3 (CSRF), W4 (authorisation matrix), W5 (login
throttling across instances) and W6 (session cookies) of RELIABILITY.md G.7.

Routes are taken from ``app.url_map`` — not from a hand-written list — so a new
route is covered (or, if it cannot be classified, fails the test) the day it is
added.  Object ids are real rows belonging to other users.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.routing import Rule

from mailgate import db
from mailgate.base_url import set_base_url
from mailgate.dealer_settings import import_settings
from mailgate.models import (
    Customer,
    InboundMail,
    InboundRaw,
    Lead,
    LoginFailure,
    OutboxMail,
    User,
    Webhook,
    utcnow,
)
from mailgate.webui.api.tokens import create_token

from .conftest import DEALER_TOML
from .test_header_injection import XSS_PAYLOADS, live_markup, visible_text
from .webui_helpers import PASSWORD, csrf_token, ensure_user, logged_in, web_app

ADMIN, ANNA, CHEF, BERT, POOL = (
    "admin@autohaus.example",
    "anna@autohaus.example",
    "chef@autohaus.example",
    "bert@autohaus.example",
    "pool@autohaus.example",
)
ROLES = ("admin", "supervisor", "salesperson_a", "salesperson_b", "anonymous")
ACCOUNT = {"admin": ADMIN, "supervisor": CHEF, "salesperson_a": ANNA, "salesperson_b": BERT}
BENIGN = "Erika Muster"


@dataclass
class World:
    """The dealership with one object of every kind, and who owns what."""

    factory: sessionmaker[Session]
    app: Flask
    lead_a: int  # Anna's (in Carl Chef's team)
    lead_b: int  # Bert's (nobody's team)
    lead_pool: int
    customer_a: int
    customer_b: int
    inbound: int
    outbox: int
    user_b: int
    token_id: int  # an API token (scope "read")
    hook_id: int  # a webhook
    read_token: str


def _raw(subject: str, sender: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "kunde@kunden.example"
    msg["To"] = "leads@autohaus.example"
    msg["Subject"] = subject
    msg["X-Sender-Name"] = sender
    msg.set_content(f"Nachricht von {sender}")
    return msg.as_bytes(policy=policy.SMTP)


def _add_lead(session: Session, owner: str, n: int, secret: str) -> tuple[int, int]:
    customer = Customer(name=f"{secret} Kunde", email=f"{secret.lower()}@kunden.example")
    session.add(customer)
    session.flush()
    owner_id = session.scalar(select(User.id).where(User.email == owner))
    lead = Lead(
        dedupe_key=f"w-{n}",
        reply_token=f"token-w-{n}",
        assignee_id=owner_id,
        customer_id=customer.id,
        subject=f"Anfrage {secret}",
        message=f"Nachricht {secret}",
        status="new" if owner == POOL else "assigned",
    )
    session.add(lead)
    session.flush()
    return lead.id, customer.id


@pytest.fixture
def world(factory: sessionmaker[Session]) -> World:
    with db.session_scope(factory) as session:
        import_settings(
            session,
            DEALER_TOML.replace(
                '[distribution]\nfallback_user = "anna@autohaus.example"',
                f'[distribution]\nfallback_user = "anna@autohaus.example"\npool_user = "{POOL}"',
            )
            + f'\n[[users]]\nemail = "{POOL}"\nname = "Pool"\nrole = "salesperson"\n',
        )
    ensure_user(factory, ADMIN, "admin")
    ensure_user(factory, ANNA, "salesperson", supervisor_email=CHEF)
    ensure_user(factory, CHEF, "supervisor")
    user_b = ensure_user(factory, BERT, "salesperson")
    ensure_user(factory, POOL, "salesperson", password=None)
    with db.session_scope(factory) as session:
        lead_a, customer_a = _add_lead(session, ANNA, 1, "Annasgeheimnis")
        lead_b, customer_b = _add_lead(session, BERT, 2, "Bertsgeheimnis")
        lead_pool, _ = _add_lead(session, POOL, 3, "Poolkunde")
        raw = _raw("Anfrage Inboundgeheimnis", "Inboundgeheimnis")
        inbound = InboundMail(
            channel="smtp",
            envelope_from="kunde@kunden.example",
            envelope_to=["leads@autohaus.example"],
            size=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
            message_id="<inbound-w@kunden.example>",
            status="quarantined",
            status_reason="no customer e-mail address or phone number found",
            lead_id=lead_b,
        )
        session.add(inbound)
        session.flush()
        session.add(InboundRaw(inbound_id=inbound.id, raw=raw))
        outbox = OutboxMail(
            idempotency_key="w-outbox",
            purpose="notification",
            lead_id=lead_b,
            mail_from="leads@autohaus.example",
            recipients=[BERT],
            subject="[Lead] Outboxgeheimnis",
            message_id="<outbox-w@autohaus.example>",
            raw=b"Subject: Outboxgeheimnis\r\n\r\nx\r\n",
            status="dead",
            last_error="550 5.1.1 Outboxgeheimnis unknown",
        )
        session.add(outbox)
        token_row, read_token = create_token(session, "dms-read", ["read"])
        hook = Webhook(name="crm", url="https://crm.example/hook", secret="s" * 32, events=[])
        session.add(hook)
        session.flush()
        ids = (lead_a, lead_b, lead_pool, customer_a, customer_b, inbound.id, outbox.id)
        extra = {"token_id": token_row.id, "hook_id": hook.id, "read_token": read_token}
    return World(factory, web_app(factory), *ids, user_b=user_b, **extra)


def _url(rule: Rule, w: World, lead: int | None = None, customer: int | None = None) -> str:
    """The rule's URL with real ids: by default objects that are *not* salesperson A's."""
    values = {
        "lead_id": lead if lead is not None else w.lead_b,
        "customer_id": customer if customer is not None else w.customer_b,
        "mail_id": w.inbound,  # a part of one of the lead's mails: 404 unless it is the lead's
        "number": 1,
        "template_id": 1,  # an answer template (none exists: 404, admins only anyway)
        "inbound_id": w.inbound,
        "outbox_id": w.outbox,
        "user_id": w.user_b,
        "token_id": w.token_id,
        "hook_id": w.hook_id,
        "name": "notification" if "/templates/" in rule.rule else "filiale",
        "language": "de",
        "code": "en",
        "token": "x" * 40,
        "filename": "app.css",
    }
    path = rule.rule
    for arg in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{arg}>", str(values[arg]), path)
    return path


def _rules(app: Flask) -> list[Rule]:
    return sorted(app.url_map.iter_rules(), key=lambda r: r.rule)


# --- W3 ---------------------------------------------------------------------------------


def test_w3_every_state_changing_route_refuses_a_post_without_csrf_token(world: World) -> None:
    """W3: every route × {POST, PUT, DELETE} without a CSRF token, logged in as admin (so
    authorisation is not what refuses it) and anonymous: every method the route accepts is
    answered 400 (the bearer-token API, CSRF-exempt, answers a cookie 401); a method it does
    not accept is 405; nothing changes in the database."""
    clients = {"admin": logged_in(world.app, ADMIN), "anonymous": world.app.test_client()}
    refused = total = api_refused = api_total = 0
    not_allowed: list[str] = []
    accepted: dict[str, set[str]] = {}
    for rule in _rules(world.app):  # one path may have a rule per method (/m/<token>)
        accepted.setdefault(rule.rule, set()).update(rule.methods or ())
    for rule in _rules(world.app):
        for method in ("POST", "PUT", "DELETE"):
            if method in accepted[rule.rule] and method not in (rule.methods or set()):
                continue  # tried through the rule that accepts it
            for who, client in clients.items():
                response = client.open(_url(rule, world, world.lead_a), method=method)
                if method in accepted[rule.rule] and rule.endpoint.startswith("api."):
                    # The REST API is CSRF-exempt because it ignores cookies: a browser
                    # session (what CSRF rides on) gets 401 there, never an action.
                    api_total += 1
                    api_refused += response.status_code == 401
                    assert response.status_code == 401, (who, method, rule.rule)
                elif method in accepted[rule.rule]:
                    total += 1
                    refused += response.status_code == 400
                    assert response.status_code == 400, (who, method, rule.rule)
                else:
                    assert response.status_code == 405, (who, method, rule.rule)
                    not_allowed.append(f"{method} {rule.rule}")
    with world.factory() as session:
        assert session.get(Lead, world.lead_a) is not None
        assert session.get(Lead, world.lead_a).status == "assigned"  # type: ignore[union-attr]
    assert clients["admin"].get("/leads").status_code == 200  # still logged in
    print(
        f"FIGURE W3 state-changing requests without CSRF token rejected 400: {refused}/{total}; "
        f"cookie-only requests to the token API refused 401: {api_refused}/{api_total}"
    )
    assert total > 30 and refused == total and api_refused == api_total > 0


# --- W4 ---------------------------------------------------------------------------------

PUBLIC = {
    "home",
    "healthz",
    "static",
    "accounts.login",
    "accounts.setup",
    "accounts.forgot_password",
    "accounts.reset_password",
    "onboarding.accept_invitation",  # the invitation link's token is the permission
    "accounts.choose_language",
    "signed.confirm",
    "signed.act",
    "accounts.logout",  # harmless for anyone; and it would end the test's own sessions
    "api.openapi",  # the API's description, no data
    "branding.logo",  # the dealer's logo on the login card (404 when none is configured)
}
TOKEN_API = "api."  # bearer tokens only: a session cookie of any role is a 401
ANY_USER = {
    "leads.lead_list",
    "leads.export_csv",
    "pool.pool",
    "reports.index",
    "reports.export",
    "reports.export_pdf",
    "accounts.account",
    "leads.bulk_reassign",
    "my_day.my_day",
    "lead.new_lead",
    "leads.list_view",  # the user's own list preferences
    "customers.customer_list",  # lists scoped by query, like the lead list
    "customers.checks",
    # live fragments (htmx polls) of the user's own scope: the menu badge, new leads, My day
    "live.overdue",
    "leads_live.updates",
    "leads_live.fresh_table",
    "my_day.agenda_fragment",
}
# the team overview and its live fragment: supervisors and admins, 403 for salespeople
SUPERVISORS_AND_ADMINS = {"dashboard.overview", "dashboard.live"}
LEAD_SCOPED_PREFIXES = ("lead.", "pool.take", "customers.relink")
CUSTOMER_SCOPED = {"customers.customer_detail", "customers.merge", "customers.check"}
ADMIN_PREFIXES = ("settings.", "inbound.", "outbox.", "system.")
ADMIN_ONLY = {"lead.delete", "lead.hand_back", "leads.bulk_delete", "lead_import.lead_import"}
ADMIN_ONLY |= {"onboarding.checklist", "onboarding.test_mail", "onboarding.invite"}  # set-up
# GET routes that answer 404 without query arguments (which report) or serve raw mail.
# (and the one mailbox route: the test dealer has no IMAP mailbox, so it is a 404 for all).
NEEDS_QUERY = {
    "reports.export",
    "lead.original_html",
    "lead.original_eml",
    "settings.mailbox_edit",
    # a part of a mail, an answer template, a pending check, a merge partner: 404 without one
    "lead.inbound_part",
    "lead.outbound_part",
    "settings.answer_edit",
    "settings.answer_delete",
    "customers.check",
    "customers.merge",
    "leads_live.updates",  # new leads since ?after=<id>: 400 without it
}
READ_ONLY = {"lead.detail", "lead.original_eml", "lead.original_html", "lead.take", "pool.take"}


def _expect(endpoint: str, role: str, lead_owner: str) -> str:
    """'allow', 'deny' (403/404; anonymous: redirect to login) or 'public'."""
    if endpoint in PUBLIC:
        return "public"
    if role == "anonymous" or endpoint.startswith(TOKEN_API):
        return "deny"
    if endpoint.startswith(ADMIN_PREFIXES) or endpoint in ADMIN_ONLY:
        return "allow" if role == "admin" else "deny"
    if endpoint in ANY_USER:
        return "allow"
    if endpoint in SUPERVISORS_AND_ADMINS:
        return "allow" if role in ("admin", "supervisor") else "deny"
    if endpoint.startswith(LEAD_SCOPED_PREFIXES) or endpoint in CUSTOMER_SCOPED:
        if lead_owner == "pool" and role.startswith("salesperson") and endpoint not in READ_ONLY:
            return "deny"  # a salesperson sees a pool lead but takes it before acting on it
        visible = {
            "admin": {"a", "b", "pool"},
            "supervisor": {"a", "pool"},
            "salesperson_a": {"a", "pool"},
            "salesperson_b": {"b", "pool"},
        }[role]
        return "allow" if lead_owner in visible else "deny"
    raise AssertionError(f"route {endpoint} is not classified for W4: add it to a group")


def _denied(response, role: str, endpoint: str) -> bool:  # type: ignore[no-untyped-def]
    location = response.headers.get("Location", "")
    if endpoint.startswith(TOKEN_API):
        return response.status_code == 401
    if role == "anonymous":
        return response.status_code in (401, 403, 404) or (
            response.status_code == 302 and location.startswith("/login")
        )
    if endpoint == "pool.take" and response.status_code == 302 and location == "/pool":
        # Taking a lead that is not (or no longer) in the pool is refused back to the pool
        # page with "no longer in the pool": the everyday race of two salespeople clicking
        # the same lead.  The lead is unchanged (checked below) and nothing of it is shown.
        return True
    return response.status_code in (403, 404)


def test_w4_authorisation_matrix_over_every_route(world: World) -> None:
    """W4: {admin, supervisor, salesperson A, salesperson B, anonymous} × every route from
    url_map × the leads of A, B and the pool: every forbidden combination is 403/404
    (anonymous: sent to the login page; taking a lead that is not in the pool: back to the
    pool page, lead unchanged), for GET and for a CSRF-valid POST, and the
    refused answer leaks none of the object's data; allowed GETs answer 200."""
    secrets = {"a": "Annasgeheimnis", "b": "Bertsgeheimnis", "pool": "Poolkunde"}
    leads = {"a": world.lead_a, "b": world.lead_b, "pool": world.lead_pool}
    customers = {"a": world.customer_a, "b": world.customer_b}
    clients: dict[str, FlaskClient] = {
        role: logged_in(world.app, email) for role, email in ACCOUNT.items()
    }
    clients["anonymous"] = world.app.test_client()
    tokens = {
        role: csrf_token(c, "/login" if role == "anonymous" else "/account")
        for role, c in clients.items()
    }
    denied = forbidden = allowed_ok = 0
    for rule in _rules(world.app):
        owners: tuple[str, ...] = ("b",)
        if "lead_id" in rule.arguments:
            owners = ("a", "b", "pool")
        elif "customer_id" in rule.arguments:
            owners = ("a", "b")
        for owner in owners:
            url = _url(rule, world, leads[owner], customers.get(owner))
            for role in ROLES:
                verdict = _expect(rule.endpoint, role, owner)
                if verdict == "public":
                    continue
                client = clients[role]
                for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                    if verdict == "allow":
                        if method == "GET" and rule.endpoint not in NEEDS_QUERY:
                            response = client.get(url)
                            response.get_data()  # a streamed export must finish and
                            response.close()  # pop its request context
                            assert response.status_code == 200, (role, url)
                            allowed_ok += 1
                        continue
                    data = {"csrf_token": tokens[role]} if method == "POST" else None
                    response = client.open(url, method=method, data=data)
                    response.close()
                    forbidden += 1
                    ok = _denied(response, role, rule.endpoint)
                    denied += ok
                    assert ok, (role, method, url, response.status_code)
                    body = response.get_data(as_text=True)
                    leaked = [
                        s
                        for s in (*secrets.values(), "Inboundgeheimnis", "Outboxgeheimnis")
                        if s in body
                    ]
                    assert leaked == [], (role, method, url, leaked)
    # Lists, exports and reports of a salesperson show nothing of a colleague's leads.
    for role, hidden in (("salesperson_a", "b"), ("salesperson_b", "a"), ("supervisor", "b")):
        for url in ("/leads", "/leads/export.csv", "/pool", "/reports", "/reports.csv"):
            response = clients[role].get(url)
            body = response.get_data(as_text=True)
            response.close()
            assert secrets[hidden] not in body, (role, url)
    with world.factory() as session:
        owners = {
            lead.id: lead.assignee_id
            for lead in session.scalars(select(Lead).where(Lead.id.in_(leads.values())))
        }
        pool_owner = session.scalar(select(User.id).where(User.email == POOL))
        anna = session.scalar(select(User.id).where(User.email == ANNA))
    assert owners == {world.lead_a: anna, world.lead_b: world.user_b, world.lead_pool: pool_owner}
    print(f"FIGURE W4 forbidden role×route×object combinations denied: {denied}/{forbidden}")
    assert forbidden > 100 and denied == forbidden and allowed_ok > 40


def test_w4_api_token_scopes_and_no_token(world: World) -> None:
    """W4 (REST API): no token or a wrong one is 401, a read-only token may read but not
    write (403) — whatever session cookie the browser also sends."""
    client = logged_in(world.app, ADMIN)  # a cookie must not help
    good = {"Authorization": f"Bearer {world.read_token}"}
    bad = {"Authorization": "Bearer mg_" + "x" * 43}
    lead = f"/api/v1/leads/{world.lead_b}"
    assert client.get(lead).status_code == 401
    assert client.get(lead, headers=bad).status_code == 401
    assert client.get(lead, headers=good).status_code == 200
    for path in (f"{lead}/notes", f"{lead}/status"):
        assert (
            client.post(path, json={"text": "x", "status": "closed"}, headers=good).status_code
            == 403
        )
        assert client.post(path, json={"text": "x"}).status_code == 401
    with world.factory() as session:
        assert session.get(Lead, world.lead_b).status == "assigned"  # type: ignore[union-attr]


# --- W2 (pages) -------------------------------------------------------------------------

CUSTOMER_FIELDS = (
    "salutation", "title", "name", "first_name", "last_name", "email", "phone",
    "street", "postcode", "city", "country",
)  # fmt: skip


def _fill(session: Session, w: World, value: str) -> None:
    """Put ``value`` into every customer-controlled field the pages show (cut to the
    column's length, as the database would store it)."""

    def fit(column: object, text: str) -> str:
        length = getattr(getattr(column, "type", None), "length", None)
        return text[:length] if length else text

    columns = Customer.__table__.columns
    for cid in (w.customer_a, w.customer_b):
        session.execute(
            update(Customer)
            .where(Customer.id == cid)
            .values({f: fit(columns[f], value) for f in CUSTOMER_FIELDS})
        )
    vehicle = {
        k: value for k in ("make", "model", "variant", "vin", "listing_id", "price", "color")
    }
    for lid in (w.lead_a, w.lead_b, w.lead_pool):
        session.execute(
            update(Lead)
            .where(Lead.id == lid)
            .values(
                subject=value, message=value, source=fit(Lead.__table__.c.source, value),
                vehicle=vehicle, location=fit(Lead.__table__.c.location, value),
            )
        )  # fmt: skip
    session.execute(update(Lead).where(Lead.id == w.lead_pool).values(customer_id=w.customer_a))
    due = utcnow() - timedelta(hours=1)  # overdue, so Anna's "my day" lists it
    session.execute(
        update(Lead).where(Lead.id == w.lead_a).values(overdue_at=due, soon_at=due, next_due_at=due)
    )
    raw = _raw(value.replace("\n", " "), value)
    session.execute(
        update(InboundMail)
        .where(InboundMail.id == w.inbound)
        .values(envelope_from=value, message_id=value, status_reason=value)
    )
    session.execute(update(InboundRaw).where(InboundRaw.inbound_id == w.inbound).values(raw=raw))
    session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == w.outbox)
        .values(subject=value, recipients=[value], last_error=value, purpose="notification")
    )


def test_w2_xss_payloads_in_every_customer_field_render_inert_on_every_page(
    world: World,
) -> None:
    """W2 (web): each payload of the list in every customer field (customer, lead text and
    vehicle, inbound envelope/headers/reason, outbox subject/recipients/error) → lead list,
    lead detail and edit form, pool, my day, inbound list/detail, outbox list/detail: parsed
    with html.parser,
    0 live tags/attributes, and the payload is on the page as text."""
    admin, anna = logged_in(world.app, ADMIN), logged_in(world.app, ANNA)
    viewer = {"/pool": anna, "/my-day": anna}  # the salesperson's own pages
    pages = (
        "/leads",
        f"/leads/{world.lead_a}",
        f"/leads/{world.lead_a}/edit",
        "/pool",
        "/my-day",
        "/inbound",
        f"/inbound/{world.inbound}",
        "/outbox",
        f"/outbox/{world.outbox}",
    )
    with db.session_scope(world.factory) as session:
        _fill(session, world, BENIGN)
    baseline = {url: viewer.get(url, admin).get(url).get_data(as_text=True) for url in pages}
    live = checked = 0
    for payload in XSS_PAYLOADS:
        with db.session_scope(world.factory) as session:
            _fill(session, world, payload)
        for url in pages:
            response = viewer.get(url, admin).get(url)
            assert response.status_code == 200, (url, payload)
            page = response.get_data(as_text=True)
            problems = live_markup(baseline[url], page)
            live += len(problems)
            checked += 1
            assert problems == [], (url, payload, problems)
            assert payload.strip() in visible_text(page), (url, payload)
    print(
        f"FIGURE W2 pages with XSS payloads in every customer field: {checked} checked, "
        f"{live} live tags/attributes"
    )
    assert live == 0


# --- W5 ---------------------------------------------------------------------------------


def _try_login(app: Flask, email: str, password: str, ip: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def _message(response) -> str:  # type: ignore[no-untyped-def]
    text = response.get_data(as_text=True)
    return re.sub(r'value="[^"]*"', 'value=""', text)


@pytest.fixture
def still_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The login view's clock stands still: a 1-second delay cannot run out mid-test."""
    now = utcnow()
    monkeypatch.setattr("mailgate.webui.accounts.views.utcnow", lambda: now)


def test_w5_login_throttle_is_shared_by_two_instances_on_one_database(
    world: World, still_clock: None
) -> None:
    """W5: two app instances (two create_app() on one database) take turns answering wrong
    passwords: after N=5 failures for an account from one client the next attempt — even
    with the right password, on either instance — has to wait (429); from one client
    address, failures across many accounts are counted across instances too; the answers
    never say whether the account exists (same status and same text for a known and an
    unknown address)."""
    from mailgate.webui.accounts import throttle

    one, two = world.app, web_app(world.factory)
    for n in range(throttle.FREE_FAILURES):
        response = _try_login((one, two)[n % 2], ANNA, "falsch", "10.0.0.1")
        assert response.status_code == 401
    for app in (one, two):
        assert _try_login(app, ANNA, PASSWORD, "10.0.0.1").status_code == 429
    # Another account from the same address is not affected by Anna's pair.
    assert _try_login(two, BERT, PASSWORD, "10.0.0.1").status_code == 302

    # Per address: failures for many different accounts from one address, both instances.
    ip = "192.0.2.7"
    for n in range(throttle.ADDRESS_CEILING):
        response = _try_login((one, two)[n % 2], f"nobody{n}@x.example", "falsch", ip)
        assert response.status_code == 401
    blocked = _try_login(one, CHEF, PASSWORD, ip)
    assert blocked.status_code == 429
    assert _try_login(two, CHEF, PASSWORD, "192.0.2.8").status_code == 302
    with world.factory() as session:
        count = session.scalar(select(LoginFailure.id).where(LoginFailure.ip == ip).limit(1))
    assert count is not None

    # No user enumeration: a known and an unknown address get the same answer.
    known = _try_login(two, CHEF, "falsch", "198.51.100.1")
    unknown = _try_login(one, "niemand@autohaus.example", "falsch", "198.51.100.2")
    assert known.status_code == unknown.status_code == 401
    assert _message(known).replace(CHEF, "X") == _message(unknown).replace(
        "niemand@autohaus.example", "X"
    )
    print(
        f"FIGURE W5 login delays after {throttle.FREE_FAILURES} failures per account and "
        f"client, ceiling {throttle.ADDRESS_CEILING} accounts per address, shared by 2 "
        "instances: yes"
    )


def test_w5_lock_expires_after_the_window(world: World, still_clock: None) -> None:
    """W5: the lock is a delay, not a permanent lock-out: failures older than the window
    no longer count."""
    from mailgate.webui.accounts import throttle

    for _ in range(throttle.FREE_FAILURES):
        _try_login(world.app, BERT, "falsch", "10.1.1.1")
    assert _try_login(world.app, BERT, PASSWORD, "10.1.1.1").status_code == 429
    with db.session_scope(world.factory) as session:
        session.execute(
            update(LoginFailure).values(at=utcnow() - throttle.PAIR_WINDOW - timedelta(seconds=5))
        )
    assert _try_login(world.app, BERT, PASSWORD, "10.1.1.1").status_code == 302


# --- W6 ---------------------------------------------------------------------------------


def _session_cookie(response) -> str:  # type: ignore[no-untyped-def]
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("mailgate_session="):
            return header
    raise AssertionError("no session cookie set")


def test_w6_cookie_flags_rotation_and_logout(world: World) -> None:
    """W6: the session cookie is HttpOnly and SameSite=Lax always and Secure when the UI is
    served over https; the session is a new one after login (a value planted before login
    is not the one used after it); after logout the old cookie no longer opens a page, on
    either of two instances."""
    # Secure when the base URL is https and the request is for its host (the test client
    # asks for "localhost"); another name over plain http gets no Secure flag (the browser
    # would drop the cookie; see webui/security.py) — tests/test_host_header.py has that row.
    for base_url, secure in (("", False), ("https://localhost", True)):
        with db.session_scope(world.factory) as session:
            set_base_url(session, base_url)  # the one base URL: the dealer setting
        app = web_app(world.factory)
        client = app.test_client()
        token = csrf_token(client, "/login")
        before = client.get_cookie("mailgate_session")
        assert before is not None
        response = client.post(
            "/login", data={"email": ANNA, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302
        cookie = _session_cookie(response)
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure
        after = client.get_cookie("mailgate_session")
        assert after is not None and after.value != before.value
        # The pre-login session value (what an attacker could have planted) is not logged in.
        planted = app.test_client()
        planted.set_cookie("mailgate_session", before.value)
        assert planted.get("/leads").status_code == 302

        # Logout: the cookie captured while logged in is dead afterwards, on every instance.
        captured = after.value
        assert client.get("/leads").status_code == 200
        client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
        assert client.get("/leads").status_code == 302
        for instance in (app, web_app(world.factory)):
            replay = instance.test_client()
            replay.set_cookie("mailgate_session", captured)
            assert replay.get("/leads").status_code == 302, "a logged-out cookie still works"
        # and logging in again works (a new epoch), with a cookie of its own
        again = app.test_client()
        token = csrf_token(again, "/login")
        response = again.post(
            "/login", data={"email": ANNA, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302 and again.get("/leads").status_code == 200
        assert again.get_cookie("mailgate_session").value != captured  # type: ignore[union-attr]
