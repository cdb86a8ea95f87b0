"""Integrations (admins): API tokens for a DMS or CRM, and webhooks that tell them about leads.

A new token or webhook secret is shown once, in the answer to the form that
made it, and never again (the token is stored only as a hash; the secret is
needed to sign, so it is kept, but the page does not show it after that).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select

from mailgate.models import ApiToken, Webhook
from mailgate.webhooks.admin import (
    WebhookError,
    create_webhook,
    delete_webhook,
    queue_test_event,
    update_webhook,
)
from mailgate.webhooks.emit import EVENTS

from ..access import admin_required
from ..api.tokens import SCOPES, TokenError, create_token, revoke_token
from ..context import db
from .common import bp

SCOPE_LABELS = {"read": _l("read leads"), "write": _l("change status, add notes")}
EVENT_LABELS = {
    "lead.created": _l("a lead was created"),
    "lead.assigned": _l("a lead was assigned"),
    "lead.answered": _l("a lead was answered"),
    "lead.escalated": _l("a lead was escalated"),
    "lead.status_changed": _l("a lead's status changed"),
    "lead.closed": _l("a lead was closed"),
}
assert set(EVENT_LABELS) == set(EVENTS) and set(SCOPE_LABELS) == set(SCOPES)


class IntegrationForm(FlaskForm):
    """Only the CSRF token: the fields are read from the request (checkbox groups)."""


def _page(status: int = 200, **shown: object) -> ResponseReturnValue:
    tokens = db().scalars(select(ApiToken).order_by(ApiToken.active.desc(), ApiToken.name)).all()
    hooks = db().scalars(select(Webhook).order_by(Webhook.id)).all()
    return (
        render_template(
            "settings/integrations.html",
            form=IntegrationForm(),
            tokens=tokens,
            hooks=hooks,
            scopes=SCOPE_LABELS,
            events=EVENT_LABELS,
            **shown,
        ),
        status,
    )


def _checked(name: str) -> list[str]:
    return request.form.getlist(name)


@bp.route("/integrations")
@admin_required
def integrations() -> ResponseReturnValue:
    return _page()


@bp.post("/integrations/tokens")
@admin_required
def token_create() -> ResponseReturnValue:
    if not IntegrationForm().validate_on_submit():
        abort(400)
    name = request.form.get("token-name", "")
    try:
        _row, token = create_token(db(), name, _checked("token-scope"))
    except TokenError:
        db().rollback()
        error = _("Give the token a name not used yet, and at least one permission.")
        return _page(400, token_error=error, token_name=name)
    db().commit()
    return _page(new_token=token, new_token_name=name.strip())


@bp.post("/integrations/tokens/<int:token_id>/revoke")
@admin_required
def token_revoke(token_id: int) -> ResponseReturnValue:
    if not IntegrationForm().validate_on_submit():
        abort(400)
    if not revoke_token(db(), token_id):
        abort(404)
    db().commit()
    flash(_("Token revoked: it no longer works."), "info")
    return redirect(url_for("settings.integrations"))


@bp.post("/integrations/webhooks")
@admin_required
def webhook_create() -> ResponseReturnValue:
    if not IntegrationForm().validate_on_submit():
        abort(400)
    url, name = request.form.get("hook-url", ""), request.form.get("hook-name", "")
    try:
        hook = create_webhook(db(), url, _checked("hook-event"), name=name)
    except WebhookError:
        db().rollback()
        error = _("Enter an http:// or https:// address and tick at least one event.")
        return _page(400, hook_error=error, hook_url=url, hook_name=name)
    db().commit()
    return _page(new_secret=hook.secret, new_secret_url=hook.url)


@bp.route("/integrations/webhooks/<int:hook_id>", methods=["GET", "POST"])
@admin_required
def webhook_edit(hook_id: int) -> ResponseReturnValue:
    hook = db().get(Webhook, hook_id)
    if hook is None:
        abort(404)
    form, error, secret = IntegrationForm(), None, None
    if form.validate_on_submit():
        renew = request.form.get("hook-renew") == "y"
        try:
            hook = update_webhook(
                db(),
                hook_id,
                url=request.form.get("hook-url", ""),
                events=_checked("hook-event"),
                name=request.form.get("hook-name", ""),
                active=request.form.get("hook-active") == "y",
                new_secret_wanted=renew,
            )
        except WebhookError:
            db().rollback()
            hook = db().get(Webhook, hook_id)
            error = _("Enter an http:// or https:// address and tick at least one event.")
        else:
            db().commit()
            if not renew:
                flash(_("Saved."), "info")
                return redirect(url_for("settings.integrations"))
            secret = hook.secret
    return render_template(
        "settings/webhook.html",
        form=form,
        hook=hook,
        events=EVENT_LABELS,
        error=error,
        secret=secret,
    )


@bp.post("/integrations/webhooks/<int:hook_id>/delete")
@admin_required
def webhook_delete(hook_id: int) -> ResponseReturnValue:
    if not IntegrationForm().validate_on_submit():
        abort(400)
    if not delete_webhook(db(), hook_id):
        abort(404)
    db().commit()
    flash(_("Webhook removed."), "info")
    return redirect(url_for("settings.integrations"))


@bp.post("/integrations/webhooks/<int:hook_id>/test")
@admin_required
def webhook_test(hook_id: int) -> ResponseReturnValue:
    if not IntegrationForm().validate_on_submit():
        abort(400)
    try:
        queue_test_event(db(), hook_id)
    except WebhookError:
        abort(404)
    db().commit()
    flash(_("Test event queued: it is sent within a few seconds."), "info")
    return redirect(url_for("settings.integrations"))
