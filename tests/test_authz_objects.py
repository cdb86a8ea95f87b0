"""Object-level authorisation on every route (issue 16, item 4), from Flask's URL map.

Every rule of ``app.url_map`` must be in :data:`RULES`, which says what each
URL argument is (a lead, an inbound mail, a user, …) and who may reach it;
a new route, or a new argument on an old one, fails
:func:`test_every_rule_is_classified` until someone writes down who may
reach it.  Then every rule that takes an object is requested by every role
with the id of an object outside that role's scope, by GET and by its POST
(with a valid CSRF token and a body that would succeed if the check were
missing): the answer is the rule's refusal (404 outside the lead scope, 403
for admin pages, 401 for the API without a token), nothing in the database
changes and no page shows the foreign customer.  Anonymous requests go to
the login page.  The role that may reach the object reaches it (so a wrong
id in the table cannot make the test pass by itself).

Team as in :mod:`tests.test_webui_lead`: Anna and Ben sell under Chris Chef,
Carl under Bea Boss, Ada is the admin.  Both databases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from mailgate.models import AnswerTemplate, Base, InboundMail, Lead, OutboxMail, User, Webhook
from mailgate.signed_links import link_secret, new_claims, sign
from mailgate.webui.api.tokens import create_token

from .test_webui_lead import (  # noqa: F401 - app_fixture, team_fixture: fixtures
    ADA,
    ANNA,
    BEN,
    CARL,
    app_fixture,
    new_lead,
    team_fixture,
)
from .test_webui_manual_lead import FORM
from .webui_helpers import csrf_token, ensure_user, logged_in

BOSS = "boss@autohaus.example"  # supervisor of Carl only: another team than Anna's

# Who may reach a rule's objects:
LEAD_SCOPE = "lead scope"  # access.visible_lead: own / team / pool / all; 404 outside
POOL = "pool lead"  # only a lead still in the pool, taken by someone who may see it
ADMIN = "admin"  # access.admin_required: 403 for everyone else
API_READ = "api read"  # a bearer token with the read scope (tokens see every lead)
API_WRITE = "api write"  # a bearer token with the write scope
CAPABILITY = "capability"  # the URL's token is the permission (signed links, reset links)
NO_OBJECT = "no object"  # the argument is no stored object (a language code, a file)
OWN = "own"  # lists and pages scoped by query to the user's own scope, no id
PUBLIC = "public"  # login, set-up, health: no account needed


@dataclass(frozen=True)
class Access:
    """One rule: who may reach it, what its URL arguments are, a POST body that would act."""

    who: str
    args: dict[str, str] = field(default_factory=dict)  # argument -> object kind
    post: dict[str, Any] = field(default_factory=dict)


LEAD = {"lead_id": "lead"}
# a part of one of the lead's mails: the mail must belong to the lead in the URL
PART_OF_INBOUND = {"lead_id": "lead", "mail_id": "inbound mail", "number": "part number"}
PART_OF_OUTBOUND = {"lead_id": "lead", "mail_id": "lead's outbox mail", "number": "part number"}
CUSTOMER = {"customer_id": "customer"}
RULES: dict[str, Access] = {
    # the lead page and its actions (webui/lead/)
    "lead.detail": Access(LEAD_SCOPE, LEAD),
    "lead.original_html": Access(LEAD_SCOPE, LEAD),
    "lead.original_eml": Access(LEAD_SCOPE, LEAD),
    "lead.edit": Access(
        LEAD_SCOPE, LEAD, {"customer_email": "ben.privat@attacker.example", "customer_name": "X"}
    ),
    "lead.contact": Access(LEAD_SCOPE, LEAD, {"channel": "phone", "note": "angerufen"}),
    "lead.resubmission": Access(LEAD_SCOPE, LEAD, {"when": "2030-01-02T09:00"}),
    "lead.due": Access(LEAD_SCOPE, LEAD, {"when": "2030-01-02T09:00"}),
    "lead.qualification": Access(LEAD_SCOPE, LEAD, {"value": "hot"}),
    "lead.stage": Access(LEAD_SCOPE, LEAD, {"stage": "offer"}),
    "lead.reassign": Access(LEAD_SCOPE, LEAD, {"to": "{me}", "note": "meins", "reassign": "y"}),
    "lead.take": Access(LEAD_SCOPE, LEAD),
    "lead.close": Access(LEAD_SCOPE, LEAD, {"reason": "sold"}),
    "lead.reopen": Access(LEAD_SCOPE, LEAD),
    "lead.delete": Access(ADMIN, LEAD, {"confirm": "y"}),
    "lead.hand_back": Access(ADMIN, LEAD, {"to": "owner"}),
    "lead.new_lead": Access(OWN),  # the customer id it posts: test_form_posted_ids below
    "lead_import.lead_import": Access(ADMIN),
    "pool.take": Access(POOL, LEAD),
    # answering and the conversation's downloads (issue 17 items 8, 9)
    "lead.answer": Access(LEAD_SCOPE, LEAD, {"body": "Übernommen", "key": "k" * 32}),
    "lead.inbound_part": Access(LEAD_SCOPE, PART_OF_INBOUND),
    "lead.outbound_part": Access(LEAD_SCOPE, PART_OF_OUTBOUND),
    # the customer file (webui/customers/): customer scope = he has a lead in the lead scope
    "customers.customer_list": Access(OWN),
    "customers.checks": Access(OWN),
    "customers.customer_detail": Access(LEAD_SCOPE, CUSTOMER),
    "customers.merge": Access(LEAD_SCOPE, CUSTOMER, {"other": "{own customer}"}),
    "customers.check": Access(LEAD_SCOPE, CUSTOMER, {"choose_new": "y"}),
    "customers.relink": Access(LEAD_SCOPE, LEAD, {"customer": "{own customer}"}),
    "pool.pool": Access(OWN),
    "leads.lead_list": Access(OWN),
    "live.overdue": Access(OWN),  # the overdue count of the user's own scope (the menu badge)
    "dashboard.overview": Access(OWN),  # supervisors and admins: figures of their own scope
    "dashboard.live": Access(OWN),  # the overview's figures block (htmx poll)
    "leads.export_csv": Access(OWN),
    "leads.bulk_reassign": Access(OWN),  # the lead ids it posts: test_form_posted_ids below
    "leads.list_view": Access(OWN),  # the user's own list preferences
    "leads.bulk_delete": Access(ADMIN),
    "my_day.my_day": Access(OWN),
    # the list's and My day's live fragments: the user's own scope and filters, no object id
    "leads_live.updates": Access(OWN),
    "leads_live.fresh_table": Access(OWN),
    "my_day.agenda_fragment": Access(OWN),
    "reports.index": Access(OWN),
    "reports.export": Access(OWN),
    "reports.export_pdf": Access(OWN),
    "home": Access(OWN),
    "accounts.account": Access(OWN),
    # the admin's inbox and outbox
    "inbound.inbound_list": Access(ADMIN),
    "inbound.inbound_detail": Access(ADMIN, {"inbound_id": "inbound mail"}),
    "inbound.inbound_html": Access(ADMIN, {"inbound_id": "inbound mail"}),
    "inbound.inbound_eml": Access(ADMIN, {"inbound_id": "inbound mail"}),
    "inbound.inbound_reprocess": Access(ADMIN, {"inbound_id": "inbound mail"}),
    "outbox.outbox_list": Access(ADMIN),
    "outbox.outbox_detail": Access(ADMIN, {"outbox_id": "outbox mail"}),
    "outbox.outbox_resend": Access(ADMIN, {"outbox_id": "outbox mail"}),
    # settings (admins only, every page)
    "settings.general": Access(ADMIN),
    # set-up in the browser and the system page (issue 21 item 2): admins only
    "onboarding.checklist": Access(ADMIN),
    "onboarding.test_mail": Access(ADMIN),
    "onboarding.invite": Access(
        ADMIN, {}, {"name": "Neu", "email": "neu@autohaus.example", "role": "admin"}
    ),
    "system.status": Access(ADMIN),
    "system.doctor": Access(ADMIN),
    "settings.distribution": Access(ADMIN),
    "settings.escalation": Access(ADMIN),
    "settings.export": Access(ADMIN),
    "settings.feedback": Access(ADMIN),
    "settings.holidays": Access(ADMIN),
    "settings.hours": Access(ADMIN),
    "settings.integrations": Access(ADMIN),
    "settings.token_create": Access(ADMIN),
    "settings.token_revoke": Access(ADMIN, {"token_id": "api token"}),
    "settings.webhook_create": Access(ADMIN),
    "settings.webhook_edit": Access(
        ADMIN, {"hook_id": "webhook"}, {"url": "https://x.example/h", "events": "lead.created"}
    ),
    "settings.webhook_delete": Access(ADMIN, {"hook_id": "webhook"}),
    "settings.webhook_test": Access(ADMIN, {"hook_id": "webhook"}),
    "settings.mailboxes": Access(ADMIN),
    "settings.mailbox_new": Access(ADMIN),
    "settings.mailbox_edit": Access(ADMIN, {"name": "mailbox"}),
    "settings.mailbox_delete": Access(ADMIN, {"name": "mailbox"}),
    "settings.mailbox_fetch": Access(ADMIN, {"name": "mailbox"}),
    "settings.preview_json": Access(ADMIN),
    "settings.reasons": Access(ADMIN),
    "settings.regions_json": Access(ADMIN),
    "settings.templates": Access(ADMIN),
    "settings.template_edit": Access(
        ADMIN, {"language": "template", "name": "template"}, {"subject": "x", "text": "x"}
    ),
    "settings.template_reset": Access(ADMIN, {"language": "template", "name": "template"}),
    "settings.template_preview": Access(
        ADMIN, {"language": "template", "name": "template"}, {"subject": "x", "text": "x"}
    ),
    "settings.transfer": Access(ADMIN),
    "settings.answers": Access(ADMIN, {}, {"mode": "view_only"}),
    "settings.answer_new": Access(ADMIN, {}, {"name": "x", "language": "de", "body": "y"}),
    "settings.answer_edit": Access(
        ADMIN, {"template_id": "answer template"}, {"name": "x", "language": "de", "body": "y"}
    ),
    "settings.answer_delete": Access(ADMIN, {"template_id": "answer template"}),
    "settings.users": Access(ADMIN),
    "settings.user_new": Access(ADMIN),
    "settings.user_edit": Access(
        ADMIN, {"user_id": "user"}, {"name": "Übernommen", "role": "admin", "email": "{me}"}
    ),
    "settings.user_sent_folder": Access(ADMIN, {"user_id": "user"}),
    "settings.user_switch": Access(
        ADMIN, {"user_id": "user"}, {"switch": "receives_leads", "value": "0"}
    ),
    # the REST API: bearer tokens only (a browser session is no API credential)
    "api.openapi": Access(PUBLIC),
    "api.list_leads": Access(API_READ),
    "api.create_lead": Access(
        API_WRITE, {}, {"customer": {"email": "k@kunden.example"}, "origin": "x"}
    ),
    "api.get_lead": Access(API_READ, LEAD),
    "api.change_status": Access(API_WRITE, LEAD, {"status": "offer"}),
    "api.add_note": Access(API_WRITE, LEAD, {"text": "von außen"}),
    "api.add_contact": Access(API_WRITE, LEAD, {"outcome": "not_reached"}),
    # capabilities and things that are no stored object
    "signed.confirm": Access(CAPABILITY, {"token": "signed link"}),
    "signed.act": Access(CAPABILITY, {"token": "signed link"}),
    "accounts.reset_password": Access(CAPABILITY, {"token": "password reset link"}),
    "onboarding.accept_invitation": Access(CAPABILITY, {"token": "invitation link"}),
    "accounts.choose_language": Access(NO_OBJECT, {"code": "language code"}),
    "static": Access(NO_OBJECT, {"filename": "static file"}),
    "accounts.login": Access(PUBLIC),
    "accounts.logout": Access(PUBLIC),
    "accounts.setup": Access(PUBLIC),
    "accounts.forgot_password": Access(PUBLIC),
    "healthz": Access(PUBLIC),
    "branding.logo": Access(PUBLIC),  # the dealer's logo, shown on the login page too
}
# What an object argument may be; a new kind needs a fixture object below.
KINDS = {
    "lead",
    "customer",
    "inbound mail",
    "outbox mail",
    "api token",
    "webhook",
    "mailbox",
    "template",
    "answer template",
    "lead's outbox mail",
    "part number",
    "user",
    "signed link",
    "password reset link",
    "invitation link",
    "language code",
    "static file",
}
# Every rule that takes an object, and every admin page (cheap, and a page without an id
# can still show objects).
OBJECT_RULES = sorted(
    e
    for e, a in RULES.items()
    if a.who in (ADMIN, API_READ, API_WRITE) or (a.args and a.who in (LEAD_SCOPE, POOL))
)
# Tables that a refused request may touch: none.  (Listed here if that ever changes.)
VOLATILE: frozenset[str] = frozenset()


def rules_of(app: Flask) -> dict[str, Rule]:
    return {rule.endpoint: rule for rule in app.url_map.iter_rules()}


def test_every_rule_is_classified(team: sessionmaker[Session], app: Flask) -> None:
    """A new route (or a new argument) fails here until RULES says who may reach it."""
    rules = rules_of(app)
    unknown = sorted(set(rules) - set(RULES))
    assert not unknown, f"classify these routes in RULES (who may reach which object): {unknown}"
    gone = sorted(set(RULES) - set(rules))
    assert not gone, f"RULES lists routes that no longer exist: {gone}"
    for endpoint, rule in rules.items():
        access = RULES[endpoint]
        assert set(rule.arguments) == set(access.args), (endpoint, rule.arguments)
        assert set(access.args.values()) <= KINDS, endpoint
        if access.who == NO_OBJECT or access.who == CAPABILITY:
            assert access.args, endpoint


# --- the world: objects of every kind, each owned by someone ----------------------------------


@dataclass
class World:
    leads: dict[str, int]  # owner e-mail -> lead id
    customer_mail: dict[int, str]  # lead id -> its customer's e-mail (must not leak)
    inbound: dict[int, int]  # lead id -> inbound mail id
    outbox: int
    users: dict[str, int]
    token: int
    webhook: int
    read_token: str
    write_token: str
    lead_outbox: dict[int, int] = field(default_factory=dict)  # lead id -> one of its mails
    answer_template: int = 0
    customers: dict[int, int] = field(default_factory=dict)  # lead id -> its customer id


@pytest.fixture(name="world")
def world_fixture(team: sessionmaker[Session]) -> World:
    ensure_user(team, BOSS, "supervisor")
    leads = {owner: new_lead(team, n, owner) for n, owner in enumerate((ANNA, CARL, BEN), 1)}
    with team.begin() as session:
        customer_mail = {
            lead.id: lead.customer.email for lead in session.scalars(select(Lead)) if lead.customer
        }
        inbound = {
            lead_id: session.scalar(select(InboundMail.id).where(InboundMail.lead_id == lead_id))
            for lead_id in leads.values()
        }
        outbox = session.scalar(select(OutboxMail.id).where(OutboxMail.lead_id == leads[CARL]))
        users = {u.email: u.id for u in session.scalars(select(User))}
        customers = {
            lead.id: lead.customer_id for lead in session.scalars(select(Lead)) if lead.customer_id
        }
        token, read_token = create_token(session, "crm-lesen", ["read"])
        _, write_token = create_token(session, "crm-schreiben", ["read", "write"])
        hook = Webhook(name="crm", url="https://crm.example/hook", secret="s" * 32, events=[])
        session.add(hook)
        session.flush()
        answer = AnswerTemplate(name="Angebot", language="de", subject="", body="Hallo")
        session.add(answer)
        session.flush()
        ids = (token.id, hook.id)
        lead_outbox = {
            lead_id: session.scalar(select(OutboxMail.id).where(OutboxMail.lead_id == lead_id))
            for lead_id in leads.values()
        }
        answer_template = answer.id
    assert all(inbound.values()) and outbox is not None
    return World(
        leads=leads,
        customer_mail=customer_mail,
        inbound=inbound,  # type: ignore[arg-type]
        outbox=outbox,
        users=users,
        token=ids[0],
        webhook=ids[1],
        read_token=read_token,
        write_token=write_token,
        lead_outbox=lead_outbox,  # type: ignore[arg-type]
        answer_template=answer_template,
        customers=customers,
    )


# The lead outside each role's scope: Ben and Carl's lead; Bea Boss (Carl's team) and Anna's.
FOREIGN_LEAD = {BEN: CARL, BOSS: ANNA, ADA: CARL}


def values_for(access: Access, world: World, viewer: str) -> dict[str, object]:
    """URL values naming an object outside ``viewer``'s scope (for admins: any object)."""
    lead = world.leads[FOREIGN_LEAD[viewer]]
    by_kind: dict[str, object] = {
        "lead": lead,
        "inbound mail": world.inbound[lead],
        "lead's outbox mail": world.lead_outbox[lead],
        "part number": 1,
        "answer template": world.answer_template,
        "outbox mail": world.outbox,
        "api token": world.token,
        "webhook": world.webhook,
        "mailbox": "werkstatt",
        "user": world.users[CARL if viewer != CARL else ANNA],
        "customer": world.customers[lead],
    }
    values = {}
    for name, kind in access.args.items():
        if kind == "template":
            values[name] = "de" if name == "language" else "notification"
        else:
            values[name] = by_kind[kind]
    return values


def snapshot(factory: sessionmaker[Session], skip: frozenset[str] = VOLATILE) -> dict[str, str]:
    """A digest of every table's rows: a refused request must leave all of them alone."""
    digests = {}
    with factory() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            rows = [tuple(r) for r in session.execute(select(table).order_by(*order))]
            digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


def url(app: Flask, endpoint: str, values: dict[str, object]) -> str:
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **values)


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) & {"GET", "POST"})


def request(
    client: FlaskClient,
    method: str,
    path: str,
    body: dict[str, Any],
    token: str | None,
    *,
    api: bool,
) -> TestResponse:
    if api:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method == "GET":
            return client.get(path, headers=headers)
        return client.post(path, json=body, headers=headers)
    if method == "GET":
        return client.get(path)
    return client.post(path, data={**body, "csrf_token": token or ""})


def refused(access: Access, response: TestResponse) -> bool:
    status = response.status_code
    if access.who == LEAD_SCOPE:
        return status == 404  # as if it did not exist: no probing by id
    if access.who == ADMIN:
        return status == 403
    if access.who in (API_READ, API_WRITE):
        return status in (401, 403)
    if access.who == POOL:  # the pool says "not in the pool (or not visible)" and shows the pool
        return status == 302 and response.headers["Location"].endswith("/pool")
    raise AssertionError(access.who)


def clients(app: Flask) -> Iterator[tuple[str, FlaskClient, str]]:
    for email in (BEN, BOSS, ADA):
        client = logged_in(app, email)
        yield email, client, csrf_token(client, "/account")


def _placeholder(value: Any, viewer: str, world: World) -> Any:
    """``{me}``: the viewer's e-mail; ``{own customer}``: a customer the viewer may see."""
    if value == "{me}":
        return viewer
    if value == "{own customer}":
        own = {BEN: BEN, BOSS: CARL, ADA: ANNA}[viewer]
        return str(world.customers[world.leads[own]])
    return value


def test_no_role_reaches_an_object_outside_its_scope(
    team: sessionmaker[Session], app: Flask, world: World
) -> None:
    rules = rules_of(app)
    checked = 0
    for viewer, client, token in clients(app):
        for endpoint in OBJECT_RULES:
            access, rule = RULES[endpoint], rules[endpoint]
            if viewer == ADA and access.who != ADMIN and access.who not in (API_READ, API_WRITE):
                continue  # the admin's scope is everything: nothing is foreign to him
            if viewer == ADA and access.who == ADMIN:
                continue  # his reach is checked in test_the_allowed_role_reaches_its_objects
            values = values_for(access, world, viewer)
            path = url(app, endpoint, values)
            secret = world.customer_mail[world.leads[FOREIGN_LEAD[viewer]]]
            body = {k: _placeholder(v, viewer, world) for k, v in access.post.items()}
            api = access.who in (API_READ, API_WRITE)
            for method in methods(rule):
                before = snapshot(team)
                # the API with the browser session only: a session is no API credential
                response = request(client, method, path, body, None if api else token, api=api)
                where = (viewer, method, path, response.status_code)
                assert refused(access, response), where
                assert snapshot(team) == before, ("written", *where)
                assert secret not in response.get_data(as_text=True), ("leaked", *where)
                checked += 1
    assert checked > 60  # every object rule, every role, every method


def test_the_api_takes_no_session_and_a_read_token_cannot_write(
    team: sessionmaker[Session], app: Flask, world: World
) -> None:
    lead = world.leads[ANNA]
    used = frozenset({"api_token"})  # a valid token notes its last use
    with app.test_client() as anonymous:
        for endpoint in ("api.get_lead", "api.change_status", "api.add_note"):
            access = RULES[endpoint]
            path = url(app, endpoint, {"lead_id": lead})
            for method in methods(rules_of(app)[endpoint]):
                before = snapshot(team, used)
                response = request(anonymous, method, path, access.post, None, api=True)
                assert response.status_code == 401, (endpoint, method)
                reader = request(anonymous, method, path, access.post, world.read_token, api=True)
                assert reader.status_code == (200 if method == "GET" else 403), (endpoint, method)
                assert snapshot(team, used) == before


FRAGMENTS = {"leads_live.updates", "leads_live.fresh_table", "my_day.agenda_fragment"}


def test_anonymous_visitors_are_sent_to_the_login(
    team: sessionmaker[Session], app: Flask, world: World
) -> None:
    rules = rules_of(app)
    anonymous = app.test_client()
    before = snapshot(team)
    for endpoint, access in RULES.items():
        if access.who not in (LEAD_SCOPE, POOL, ADMIN, OWN):
            continue
        path = url(app, endpoint, values_for(access, world, BEN))
        for method in methods(rules[endpoint]):
            if method == "POST":
                response = anonymous.post(path, data=access.post)
                # without a session there is no CSRF token either: 400, or the login first
                assert response.status_code in (302, 400), (endpoint, response.status_code)
            elif endpoint in FRAGMENTS:
                # an htmx fragment never answers with the login page (it would be swapped
                # into the list): 401, or 286 ("stop polling") to a poll
                response = anonymous.get(path)
                assert response.status_code in (401, 286), (endpoint, response.status_code)
            else:
                response = anonymous.get(path)
                assert response.status_code == 302, (endpoint, response.status_code)
            if response.status_code == 302:
                assert "/login" in response.headers["Location"], endpoint
    assert snapshot(team) == before


def test_the_allowed_role_reaches_its_objects(
    team: sessionmaker[Session], app: Flask, world: World
) -> None:
    """The ids above are real: the owner (lead scope) and the admin (admin pages) get them."""
    rules = rules_of(app)
    anna, ada = logged_in(app, ANNA), logged_in(app, ADA)
    for endpoint in OBJECT_RULES:
        access = RULES[endpoint]
        if "GET" not in methods(rules[endpoint]) or access.who not in (LEAD_SCOPE, ADMIN):
            continue
        who, client = (ANNA, anna) if access.who == LEAD_SCOPE else (ADA, ada)
        values = values_for(access, world, BOSS if who == ANNA else BEN)  # Anna's lead for Anna
        response = client.get(url(app, endpoint, values))
        expected = {404} if access.args.get("name") == "mailbox" else {200}
        assert response.status_code in expected, (who, endpoint, response.status_code)


# --- ids that travel in a form, not in the URL -----------------------------------------------


def test_form_posted_ids_outside_the_scope_are_refused(
    team: sessionmaker[Session], app: Flask, world: World
) -> None:
    """Bulk reassign posts lead ids; a supervisor naming another team's lead gets a 404."""
    boss = logged_in(app, BOSS)
    token = csrf_token(boss, "/leads")
    before = snapshot(team)
    for ids in ([world.leads[ANNA]], [world.leads[CARL], world.leads[ANNA]], [world.leads[BEN]]):
        response = boss.post(
            "/leads/reassign",
            data={"lead_ids": ids, "target": world.users[CARL], "csrf_token": token},
        )
        assert response.status_code == 404, (ids, response.status_code)
    ben = logged_in(app, BEN)
    response = ben.post(
        "/leads/reassign",
        data={
            "lead_ids": [world.leads[CARL]],
            "target": world.users[BEN],
            "csrf_token": csrf_token(ben, "/leads"),
        },
    )
    assert response.status_code == 403  # salespeople do not reassign in bulk
    assert snapshot(team) == before


def test_a_signed_link_acts_only_for_its_user_on_his_own_lead(
    team: sessionmaker[Session], app: Flask, world: World
) -> None:
    """The link is the permission, for one user and one lead: not for a colleague who is
    logged in, and not for a lead that is not (or no longer) the link user's."""
    with team.begin() as session:
        secret = link_secret(session)
    now = datetime.now(UTC)
    annas_link = sign(secret, new_claims(world.users[ANNA], world.leads[ANNA], "contacted", now))
    bens_link_to_carls = sign(
        secret, new_claims(world.users[BEN], world.leads[CARL], "contacted", now)
    )
    ben, anonymous = logged_in(app, BEN), app.test_client()
    attempts = ((ben, "/account", annas_link), (anonymous, "/login", bens_link_to_carls))
    before = snapshot(team)
    for client, page, link in attempts:
        assert client.get(f"/m/{link}").status_code in (403, 409)
        token = csrf_token(client, page)
        response = client.post(f"/m/{link}", data={"csrf_token": token})
        assert response.status_code in (403, 409), response.status_code
    assert snapshot(team) == before


def test_a_customer_id_posted_to_the_manual_lead_form_is_scoped(
    team: sessionmaker[Session], app: Flask, world: World
) -> None:
    """The duplicate step posts a customer id; outside the scope it is a 404 (details:
    tests/test_manual_lead_scope.py)."""
    with team() as session:
        annas = session.get(Lead, world.leads[ANNA])
        assert annas is not None and annas.customer_id is not None
        customer_id = annas.customer_id
    boss = logged_in(app, BOSS)
    token = csrf_token(boss, "/leads/new")
    before = snapshot(team)
    for choice in ({"choose_update": "y", "take_over": ["email"]}, {"choose_keep": "y"}):
        form = {**FORM, "email": "ben.privat@attacker.example"}
        data = {**form, **choice, "duplicate_of": str(customer_id), "csrf_token": token}
        assert boss.post("/leads/new", data=data).status_code == 404
    assert snapshot(team) == before
