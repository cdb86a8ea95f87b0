"""The REST API: tokens and scopes, the lead list's filters and pages, one lead, status
changes and notes with their protocol lines and webhook events, and its errors.  Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate import db
from mailgate.models import ApiToken, Lead, ProtocolEntry, User, WebhookDelivery
from mailgate.webhooks import emit as emit_module
from mailgate.webhooks.admin import create_webhook
from mailgate.webui import i18n
from mailgate.webui.api.tokens import create_token, revoke_token

from .distribution_helpers import form_mail, ingest
from .test_escalation import ESCALATING_DEALER
from .webui_helpers import web_app

BEN_TOML = '\n[[users]]\nemail = "ben@autohaus.example"\nname = "Ben Berg"\n'


def make_token(factory: sessionmaker[Session], name: str, scopes: list[str]) -> str:
    with db.session_scope(factory) as session:
        return create_token(session, name, scopes)[1]


def leads(factory: sessionmaker[Session], count: int) -> list[int]:
    ingest(factory, *(form_mail(n) for n in range(1, count + 1)))
    with factory() as session:
        return list(session.scalars(select(Lead.id).order_by(Lead.id)))


@pytest.fixture
def api(dealer: sessionmaker[Session]) -> Iterator[FlaskClient]:
    emit_module.forget_webhooks()
    with db.session_scope(dealer) as session:
        from mailgate.dealer_settings import import_settings

        import_settings(session, ESCALATING_DEALER + BEN_TOML)
    yield web_app(dealer).test_client()
    emit_module.forget_webhooks()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_without_a_valid_token_nothing_is_shown(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    leads(dealer, 1)
    token = make_token(dealer, "crm", ["read"])
    for headers in ({}, bearer("mg_wrong"), {"Authorization": f"Basic {token}"}, bearer("")):
        response = api.get("/api/v1/leads?bogus=1", headers=headers)  # 401 before anything
        assert response.status_code == 401, headers
        assert response.mimetype == "application/problem+json"
        assert response.json["status"] == 401 and response.json["title"] == "Unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get("/api/v1/leads", headers=bearer(token)).status_code == 200
    with db.session_scope(dealer) as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.last_used_at is not None and row.token_hash != token
        assert token.startswith(row.prefix) and token not in str(row.__dict__)
        revoke_token(session, row.id)
    assert api.get("/api/v1/leads", headers=bearer(token)).status_code == 401


def test_a_read_token_cannot_write(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    (lead_id,) = leads(dealer, 1)
    token = make_token(dealer, "dms", ["read"])
    response = api.post(f"/api/v1/leads/{lead_id}/notes", json={"text": "x"}, headers=bearer(token))
    assert response.status_code == 403 and response.mimetype == "application/problem+json"
    assert api.get(f"/api/v1/leads/{lead_id}", headers=bearer(token)).status_code == 200
    writer = make_token(dealer, "writer", ["write"])  # write only: may not read
    assert api.get(f"/api/v1/leads/{lead_id}", headers=bearer(writer)).status_code == 403


def test_list_filters_and_pages(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    ids = leads(dealer, 5)
    token = make_token(dealer, "crm", ["read", "write"])
    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with db.session_scope(dealer) as session:
        ben = session.scalar(select(User.id).where(User.email == "ben@autohaus.example"))
        for i, lead_id in enumerate(ids):
            values: dict[str, object] = {"received_at": base + timedelta(days=i)}
            if i % 2:
                values |= {"source": "mobile_de", "kind": "test_drive", "assignee_id": ben}
            session.execute(update(Lead).where(Lead.id == lead_id).values(**values))
        session.execute(update(Lead).where(Lead.id == ids[0]).values(status="closed"))

    def listed(query: str) -> list[int]:
        response = api.get(f"/api/v1/leads?{query}", headers=bearer(token))
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert listed("") == ids[::-1]  # newest first
    assert listed("source=mobile_de") == [ids[3], ids[1]]
    assert listed("kind=test_drive&source=mobile_de") == [ids[3], ids[1]]
    assert listed("assignee=BEN@autohaus.example") == [ids[3], ids[1]]
    assert listed("status=closed") == [ids[0]]
    assert listed("received_from=2026-11-21&received_to=2026-11-23") == [ids[3], ids[2], ids[1]]
    assert listed("received_to=2026-11-19") == []
    assert listed("kind=test%00drive") == []  # never stored: nothing, and no database error
    pages = [
        api.get(f"/api/v1/leads?per_page=2&page={p}", headers=bearer(token)).json for p in (1, 2, 3)
    ]
    assert [[i["id"] for i in p["items"]] for p in pages] == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert {p["total"] for p in pages} == {5} and pages[0]["per_page"] == 2
    for bad in (
        "per_page=101",
        "per_page=0",
        "page=0",
        "page=x",
        "status=lost",
        "received_from=30.11.2026",
        "received_from=2026-W48-1",
        "page=1_0",
        "statuss=closed",  # a misspelt filter must not list everything
        "per_page=%205",
    ):
        response = api.get(f"/api/v1/leads?{bad}", headers=bearer(token))
        assert response.status_code == 400, bad
        assert response.mimetype == "application/problem+json"


def test_one_lead(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    (lead_id,) = leads(dealer, 1)
    token = make_token(dealer, "crm", ["read"])
    lead = api.get(f"/api/v1/leads/{lead_id}", headers=bearer(token)).json
    assert lead["id"] == lead_id and lead["status"] == "assigned"
    assert lead["assignee"]["email"] == "anna@autohaus.example"
    assert lead["customer"]["email"] and lead["received_at"].endswith("+00:00")
    missing = api.get(f"/api/v1/leads/{lead_id + 99}", headers=bearer(token))
    assert missing.status_code == 404 and missing.json["detail"] == f"no lead {lead_id + 99}"
    unknown = api.get("/api/v1/nothing", headers=bearer(token))
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"
    wrong = api.delete(f"/api/v1/leads/{lead_id}", headers=bearer(token))
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"


def protocol(factory: sessionmaker[Session], lead_id: int) -> list[tuple[str, str, str]]:
    with factory() as session:
        rows = session.scalars(
            select(ProtocolEntry).where(ProtocolEntry.lead_id == lead_id).order_by(ProtocolEntry.id)
        )
        return [(p.actor, p.action, p.detail) for p in rows]


def test_status_changes_write_protocol_and_webhook_events(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    (lead_id,) = leads(dealer, 1)
    with db.session_scope(dealer) as session:
        create_webhook(session, "https://crm.example/hook", ["lead.answered", "lead.closed"])
    token = make_token(dealer, "crm", ["read", "write"])
    url = f"/api/v1/leads/{lead_id}/status"
    response = api.post(url, json={"status": "test_drive"}, headers=bearer(token))
    assert response.status_code == 200 and response.json["status"] == "test_drive"
    assert response.json["test_drive_at"] and response.json["first_response_at"]
    assert protocol(dealer, lead_id)[-1] == ("api:crm", "status", "status assigned → test_drive")
    again = api.post(url, json={"status": "test_drive"}, headers=bearer(token))
    assert again.status_code == 409 and "already" in again.json["detail"]
    no_reason = api.post(url, json={"status": "closed"}, headers=bearer(token))
    assert no_reason.status_code == 422
    unknown = api.post(url, json={"status": "closed", "reason": "bored"}, headers=bearer(token))
    assert unknown.status_code == 422 and "bought_elsewhere" in unknown.json["detail"]
    closed = api.post(url, json={"status": "closed", "reason": "sold"}, headers=bearer(token))
    assert closed.status_code == 200, closed.json
    assert (closed.json["status"], closed.json["close_reason"]) == ("closed", "sold")
    assert protocol(dealer, lead_id)[-1][:2] == ("api:crm", "closed")
    late = api.post(url, json={"status": "offer"}, headers=bearer(token))
    assert late.status_code == 409
    with dealer() as session:
        events = session.scalars(select(WebhookDelivery.event).order_by(WebhookDelivery.id)).all()
    assert events == ["lead.answered", "lead.closed"]
    for body in ({"status": "new"}, {"status": 3}, {}, {"status": "offer", "x": 1}, [1]):
        response = api.post(url, json=body, headers=bearer(token))
        assert response.status_code == 400, body
    response = api.post(url, data="{", headers=bearer(token) | {"Content-Type": "application/json"})
    assert response.status_code == 400 and response.mimetype == "application/problem+json"


def test_note_goes_to_the_protocol_worded_in_both_languages(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    (lead_id,) = leads(dealer, 1)
    token = make_token(dealer, "DMS Nord", ["read", "write"])
    url = f"/api/v1/leads/{lead_id}/notes"
    response = api.post(url, json={"text": "  Probefahrt vereinbart  "}, headers=bearer(token))
    assert response.status_code == 201
    assert response.json["actor"] == "api:DMS Nord" and response.json["lead_id"] == lead_id
    assert response.json["text"] == "note via DMS Nord: Probefahrt vereinbart"
    assert protocol(dealer, lead_id)[-1] == (
        "api:DMS Nord",
        "note",
        "note via DMS Nord: Probefahrt vereinbart",
    )
    with dealer() as session:
        entry = session.scalars(select(ProtocolEntry).order_by(ProtocolEntry.id.desc())).first()
        assert entry is not None
        assert entry.params == [
            {"code": "api_note", "integration": "DMS Nord", "note": "Probefahrt vereinbart"}
        ]
    german = i18n.read_catalog("lead")["note via {integration}: {note}"].string
    assert german == "Notiz über {integration}: {note}"
    for body in (
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 2001},
        {"text": "\x00 \x00"},
        {"note": "x"},
    ):
        assert api.post(url, json=body, headers=bearer(token)).status_code == 400, body
    assert (
        api.post(
            "/api/v1/leads/999999/notes", json={"text": "x"}, headers=bearer(token)
        ).status_code
        == 404
    )


def test_api_posts_need_no_csrf_token_but_a_bearer(api: FlaskClient, dealer) -> None:  # type: ignore[no-untyped-def]
    """The app enforces CSRF on forms; the API is exempt because it never uses the session."""
    (lead_id,) = leads(dealer, 1)
    api.application.config["WTF_CSRF_ENABLED"] = True
    token = make_token(dealer, "crm", ["read", "write"])
    url = f"/api/v1/leads/{lead_id}/notes"
    assert api.post(url, json={"text": "ok"}, headers=bearer(token)).status_code == 201
    assert api.post(url, json={"text": "ok"}).status_code == 401


def test_openapi_document_is_public_and_names_every_route(api: FlaskClient) -> None:
    doc = api.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    routes = {
        str(rule.rule).removeprefix("/api/v1").replace("<int:lead_id>", "{lead_id}")
        for rule in api.application.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi"
    }
    assert routes == set(doc["paths"])


def test_token_names_are_unique_and_scopes_known(dealer: sessionmaker[Session]) -> None:
    from mailgate.webui.api.tokens import TokenError

    make_token(dealer, "crm", ["read"])
    for name, scopes in (("crm", ["read"]), ("", ["read"]), ("x", []), ("y", ["admin"])):
        with pytest.raises(TokenError), db.session_scope(dealer) as session:
            create_token(session, name, scopes)
