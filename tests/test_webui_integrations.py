"""Settings → Integrations: tokens shown once and usable on the API, revoked tokens refused,
webhooks added, changed, tested and removed; admins only.  Both databases."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgate.models import ApiToken, Webhook, WebhookDelivery
from mailgate.webhooks import emit as emit_module

from .test_webui_lead import ADA, ANNA, app_fixture, team_fixture  # noqa: F401 - fixtures
from .webui_helpers import logged_in, post

PAGE = "/settings/integrations"


def test_only_admins_see_the_page(app: Flask) -> None:
    assert logged_in(app, ANNA).get(PAGE).status_code == 403
    page = logged_in(app, ADA).get(PAGE)
    assert page.status_code == 200 and "Integrationen" in page.get_data(as_text=True)


def test_token_is_shown_once_and_works_until_revoked(
    app: Flask, team: sessionmaker[Session]
) -> None:
    admin = logged_in(app, ADA)
    refused = post(admin, f"{PAGE}/tokens", {"token-name": ""}, page=PAGE)
    assert refused.status_code == 400 and "mindestens eine Berechtigung" in refused.get_data(
        as_text=True
    )
    made = post(admin, f"{PAGE}/tokens", {"token-name": "DMS", "token-scope": "read"}, page=PAGE)
    html = made.get_data(as_text=True)
    token = re.search(r'id="new-token" readonly value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert token.startswith("mg_")
    assert token not in admin.get(PAGE).get_data(as_text=True)  # never again
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/leads", headers=auth).status_code == 200
    assert "nie" not in admin.get(PAGE).get_data(as_text=True).split("DMS", 1)[1].split("</tr>")[0]
    with team() as session:
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.name == "DMS"))
    revoked = post(admin, f"{PAGE}/tokens/{token_id}/revoke", page=PAGE)
    assert revoked.status_code == 302
    assert api.get("/api/v1/leads", headers=auth).status_code == 401
    assert "widerrufen" in admin.get(PAGE).get_data(as_text=True)


def test_webhook_add_edit_test_remove(app: Flask, team: sessionmaker[Session]) -> None:
    emit_module.forget_webhooks()
    admin = logged_in(app, ADA)
    bad = post(
        admin, f"{PAGE}/webhooks", {"hook-url": "ftp://x", "hook-event": "lead.created"}, page=PAGE
    )
    assert bad.status_code == 400 and 'value="ftp://x"' in bad.get_data(as_text=True)
    made = post(
        admin,
        f"{PAGE}/webhooks",
        {
            "hook-url": "https://crm.example/in",
            "hook-name": "CRM",
            "hook-event": ["lead.created", "lead.closed"],
        },
        page=PAGE,
    )
    secret = re.search(
        r'id="new-secret" readonly value="([^"]+)"', made.get_data(as_text=True)
    ).group(1)  # type: ignore[union-attr]
    with team() as session:
        hook = session.scalars(select(Webhook)).one()
        assert (hook.url, hook.name, hook.events, hook.secret) == (
            "https://crm.example/in",
            "CRM",
            ["lead.created", "lead.closed"],
            secret,
        )
    edit = f"{PAGE}/webhooks/{hook.id}"
    saved = post(
        admin,
        edit,
        {"hook-url": "https://crm.example/v2", "hook-name": "CRM", "hook-event": "lead.closed"},
    )
    assert saved.status_code == 302
    renewed = post(
        admin,
        edit,
        {
            "hook-url": "https://crm.example/v2",
            "hook-event": "lead.closed",
            "hook-active": "y",
            "hook-renew": "y",
        },
    )
    new_secret = re.search(
        r'id="new-secret" readonly value="([^"]+)"', renewed.get_data(as_text=True)
    ).group(1)  # type: ignore[union-attr]
    with team() as session:
        hook = session.get(Webhook, hook.id)
        assert hook is not None
        assert (hook.url, hook.events, hook.active, hook.secret) == (
            "https://crm.example/v2",
            ["lead.closed"],
            True,
            new_secret,
        )
        assert new_secret != secret
    assert post(admin, f"{edit}/test", page=PAGE).status_code == 302
    with team() as session:
        assert session.scalars(select(WebhookDelivery.event)).all() == ["lead.created"]
    assert post(admin, f"{edit}/delete", page=PAGE).status_code == 302
    with team() as session:
        assert session.scalars(select(Webhook)).all() == []
    assert admin.get(edit).status_code == 404
