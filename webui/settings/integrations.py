"""Integrations (admins): API tokens for a DMS or CRM, and webhooks that tell them about leads.

A new token or webhook secret is shown once, in the answer to the form that
made it, and never again (the token is stored only as a hash; the secret is
needed to sign, so it is kept, but the page does not show it after that).

A webhook URL is checked when it is saved (the same guard the sender applies
at every attempt, :mod:`mailgate.webhooks.destination`): addresses inside the
network are refused unless the operator's ``[webhooks] allow_private`` names
them.  A failed delivery is shown by its class, in words, never the socket's text.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select

from mailgate.models import ApiToken, Webhook, WebhookStatus
from mailgate.webhooks import destination, failures
from mailgate.webhooks.admin import (
    EVENTS_MISSING,
    WebhookError,
    create_webhook,
    delete_webhook,
    last_attempts,
    queue_test_event,
    update_webhook,
)
from mailgate.webhooks.emit import EVENTS

from ..access import admin_required
from ..api.tokens import SCOPES, TokenError, create_token, revoke_token
from ..context import db, settings
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
HOOK_ERRORS = {
    destination.SCHEME: _l("Enter an http:// or https:// address."),
    destination.MALFORMED: _l(
        "This is not a valid address: check the host name and the port, and write the path "
        "without spaces or special characters."
    ),
    destination.USERINFO: _l(
        "The address must not contain a user name or password (…@): the receiver checks the "
        "signature instead."
    ),
    destination.NUMERIC: _l(
        "Write an IP address as four decimal numbers with dots (a.b.c.d), or use the host name."
    ),
    destination.INTERNAL: _l(
        "This address leads into an internal network (this server, a private, link-local or "
        "reserved address) and is not allowed. If the receiver really runs inside your network, "
        "the operator can allow it in the configuration file ([webhooks] allow_private)."
    ),
    destination.UNRESOLVED: _l("The host name cannot be resolved."),
    EVENTS_MISSING: _l("Tick at least one event."),
}
assert set(HOOK_ERRORS) == set(destination.REASONS) | {EVENTS_MISSING}
FAILURE_LABELS = {
    failures.NOT_ALLOWED: _l("destination not allowed (internal address)"),
    failures.INVALID_URL: _l("invalid address"),
    failures.NOT_RESOLVED: _l("host name not found"),
    failures.REFUSED: _l("connection refused"),
    failures.TIMEOUT: _l("no answer in time"),
    failures.TLS: _l("TLS error (certificate or encryption)"),
    failures.UNREACHABLE: _l("connection failed"),
    failures.PROTOCOL: _l("not a valid HTTP answer"),
    failures.DELETED: _l("webhook deleted"),
}
assert set(FAILURE_LABELS) == set(failures.ERROR_CLASSES)
STATUS_LABELS = {
    WebhookStatus.PENDING: _l("being retried"),
    WebhookStatus.SENDING: _l("being sent"),
    WebhookStatus.SENT: _l("delivered"),
    WebhookStatus.DEAD: _l("given up"),
}
assert set(STATUS_LABELS) == set(WebhookStatus)


class IntegrationForm(FlaskForm):
    """Only the CSRF token: the fields are read from the request (checkbox groups)."""


def _allowlist() -> destination.Allowlist:
    return destination.allowlist_from(tuple(settings().webhooks.allow_private))


def _hook_error(exc: WebhookError) -> str:
    return str(HOOK_ERRORS.get(exc.code, HOOK_ERRORS[destination.MALFORMED]))


def failure_label(detail: str | None) -> str:
    """A stored delivery error in words; text stored before errors had classes is not shown
    (it may name internal hosts and ports)."""
    if not detail:
        return ""
    if detail.startswith(failures.HTTP_PREFIX) and failures.is_known(detail):
        return _("HTTP status %(status)s", status=detail[len(failures.HTTP_PREFIX) :])
    if detail in FAILURE_LABELS:
        return str(FAILURE_LABELS[detail])
    return _("error (no details)")


def _last_deliveries() -> dict[int, tuple[str, str]]:
    """Per webhook: the newest tried delivery's state and error, in words."""
    return {
        hook_id: (str(STATUS_LABELS.get(row.status, row.status)), failure_label(row.last_error))
        for hook_id, row in last_attempts(db()).items()
    }


def _refusal_now(url: str) -> str | None:
    """Why the sender would refuse this stored URL (saved before the guard, or the allowlist
    changed), or None.  Without a DNS lookup, so the page stays fast: the sender still looks."""
    try:
        destination.check_destination(url, _allowlist(), lookup=False)
    except destination.DestinationRefused as exc:
        return exc.code
    return None


def _page(status: int = 200, **shown: object) -> ResponseReturnValue:
    tokens = db().scalars(select(ApiToken).order_by(ApiToken.active.desc(), ApiToken.name)).all()
    hooks = db().scalars(select(Webhook).order_by(Webhook.id)).all()
    return (
        render_template(
            "settings/integrations.html",
            form=IntegrationForm(),
            tokens=tokens,
            hooks=hooks,
            last=_last_deliveries(),
            refused={h.id for h in hooks if _refusal_now(h.url)},
            refused_label=FAILURE_LABELS[failures.NOT_ALLOWED],
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
        hook = create_webhook(db(), url, _checked("hook-event"), name=name, allowlist=_allowlist())
    except WebhookError as exc:
        db().rollback()
        return _page(
            400,
            hook_error=_hook_error(exc),
            hook_url=url,
            hook_name=name,
            hook_events=_checked("hook-event"),
        )
    db().commit()
    return _page(new_secret=hook.secret, new_secret_url=hook.url)


@bp.route("/integrations/webhooks/<int:hook_id>", methods=["GET", "POST"])
@admin_required
def webhook_edit(hook_id: int) -> ResponseReturnValue:
    hook = db().get(Webhook, hook_id)
    if hook is None:
        abort(404)
    form, error, secret, status = IntegrationForm(), None, None, 200
    shown = {"url": hook.url, "name": hook.name, "events": hook.events, "active": hook.active}
    if form.validate_on_submit():
        renew = request.form.get("hook-renew") == "y"
        url, name = request.form.get("hook-url", ""), request.form.get("hook-name", "")
        events, active = _checked("hook-event"), request.form.get("hook-active") == "y"
        shown = {"url": url, "name": name, "events": events, "active": active}
        try:
            hook = update_webhook(
                db(),
                hook_id,
                url=url,
                events=events,
                name=name,
                active=active,
                new_secret_wanted=renew,
                allowlist=_allowlist(),
            )
        except WebhookError as exc:
            db().rollback()
            hook = db().get(Webhook, hook_id)
            error, status = _hook_error(exc), 400
        else:
            db().commit()
            if not renew:
                flash(_("Saved."), "info")
                return redirect(url_for("settings.integrations"))
            secret = hook.secret
    return (
        render_template(
            "settings/webhook.html",
            form=form,
            hook=hook,
            shown=shown,
            events=EVENT_LABELS,
            error=error,
            secret=secret,
        ),
        status,
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
    hook = db().get(Webhook, hook_id)
    if hook is None:
        abort(404)
    refusal = _refusal_now(hook.url)
    if refusal is not None:  # it would only come back as "destination not allowed"
        flash(str(HOOK_ERRORS[refusal]), "error")
        return redirect(url_for("settings.integrations"))
    queue_test_event(db(), hook_id)
    db().commit()
    flash(_("Test event queued: it is sent within a few seconds."), "info")
    return redirect(url_for("settings.integrations"))
