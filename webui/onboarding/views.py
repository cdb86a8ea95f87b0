"""The set-up checklist (``/setup/checklist``), the relay's test mail, invitations.

After the first admin exists, this page lists what is missing until mail
flows, each step computed from the real state (:mod:`.state`), with the
place to do it.  Invitations: an admin creates a user with name, address
and role; the user gets a mail with a link to set his password
(:mod:`mailgate.webui.accounts.invitations`), built only from the base URL.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from mailgate.dealer_settings import SettingsError
from mailgate.models import User, UserRole, utcnow
from mailgate.outbound.outbox import enqueue_template

from ..access import admin_required, me
from ..accounts import devices, invitations, throttle
from ..choices import options
from ..context import db, dealer, settings
from ..i18n import local_time
from ..passwords import MIN_LENGTH, WeakPassword, check_strength, hash_password
from ..settings.common import attach_error, load, plain, save
from . import relay as relay_check
from .state import listener_target, open_required, steps, suggested_base_url

log = logging.getLogger("mailgate.webui.onboarding")
bp = Blueprint("onboarding", __name__)

ROLES = [
    (UserRole.SALESPERSON.value, _l("Salesperson")),
    (UserRole.SUPERVISOR.value, _l("Supervisor")),
    (UserRole.ADMIN.value, _l("Admin")),
]


class InviteForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=255)])
    email = EmailField(
        _l("E-mail address"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)],
    )
    role = SelectField(_l("Role"), choices=options(ROLES))


class AcceptForm(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(min=MIN_LENGTH, max=1024)]
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class ActionForm(FlaskForm):
    """A button's form: only the CSRF token."""


def setup_open_steps() -> list[Any]:
    """The required steps still open, for the banner; empty for everyone but admins."""
    account = me() if _logged_in() else None
    if account is None or account.role != UserRole.ADMIN:
        return []
    try:
        return open_required(steps(db(), dealer(), settings()))
    except SettingsError:  # stored settings that no longer validate: the page itself says so
        log.warning("set-up banner: the stored settings do not validate", exc_info=True)
        return []
    except SQLAlchemyError:  # the busy and error pages render the frame too: no second error
        log.warning("set-up banner: the database did not answer", exc_info=True)
        return []


def _logged_in() -> bool:
    from flask_login import current_user

    return bool(getattr(current_user, "is_authenticated", False))


@bp.route("/setup/checklist")
@admin_required
def checklist() -> ResponseReturnValue:
    all_steps = steps(db(), dealer(), settings())
    relay = settings().relay
    return render_template(
        "onboarding/checklist.html",
        steps=all_steps,
        by={step.key: step for step in all_steps},
        open_required=open_required(all_steps),
        dealer=dealer(),
        listener=listener_target(settings().smtp),
        relay=relay,
        relay_where=relay_check.describe(relay),
        suggestion=suggested_base_url(settings().web),
        test_to=_test_recipient(),
        form=ActionForm(),
    )


def _test_recipient() -> tuple[str, str]:
    """The admin address of the dealer settings, else the admin clicking the button."""
    account = me()
    address = dealer().admin_address or account.email
    return (account.name if address == account.email else "", address)


@bp.route("/setup/test-mail", methods=["POST"])
@admin_required
def test_mail() -> ResponseReturnValue:
    """Send a real mail through the configured relay to the admin, and say what happened."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    to = _test_recipient()
    relay = settings().relay
    current = dealer()
    db().rollback()  # the relay may take seconds: never while holding SQLite's lock
    requested_at = local_time(utcnow())
    outcome = relay_check.send_test_mail(relay, current, to=to, requested_at=requested_at)
    log.info("test mail to %s through %s: %s %s", to[1], relay.host, outcome.stage, outcome.detail)
    where = relay_check.describe(relay)
    if outcome.ok:
        flash(
            _(
                "Test mail sent to %(to)s through %(relay)s. Check the inbox (and the spam "
                "folder): if it arrived, notifications reach your staff.",
                to=to[1],
                relay=where,
            ),
            "info",
        )
    elif outcome.stage == "none":
        flash(
            _(
                "No mail server for outgoing mail is configured: nothing was sent. Set [relay] "
                "host (and port, security, username, password) in the configuration file and "
                "restart mailgate."
            ),
            "error",
        )
    else:
        why = _why(outcome)
        flash(
            _(
                "The test mail to %(to)s could not be sent through %(relay)s: %(why)s Check "
                "[relay] host, port, security, username and password in the configuration file.",
                to=to[1],
                relay=where,
                why=why,
            ),
            "error",
        )
    return redirect(url_for("onboarding.checklist", _anchor="relay"))


def _why(outcome: relay_check.Outcome) -> str:
    """Why the test mail failed, in words; the server's own reply quoted when it gave one."""
    if outcome.stage == "unreachable":
        return _("The mail server cannot be reached (connection refused or no answer in time).")
    if outcome.stage == "login":
        why = _("The mail server refused mailgate's login (username or password).")
    else:
        why = _("The mail server refused the mail.")
    answer = relay_check.server_answer(outcome.detail)
    if not answer:
        return why
    return why + " " + _("Its answer: %(answer)s.", answer=answer)


# --- invitations -----------------------------------------------------------------------------


def invitation_link(token: str) -> str:
    """Only from the configured base URL, never from the request's Host header."""
    base = dealer().base_url.rstrip("/")
    if not base:
        raise LookupError("no base URL")
    return base + url_for("onboarding.accept_invitation", token=token)


def queue_invitation(user: User, inviter: str) -> None:
    """Queue the invitation mail with a set-password link (no commit; needs a base URL)."""
    secret = current_app.secret_key or ""
    token = invitations.make_token(str(secret), user)
    language = user.language or dealer().language
    role_label = {
        "de": {"salesperson": "Verkäufer:in", "supervisor": "Teamleitung", "admin": "Admin"},
        "en": {"salesperson": "Salesperson", "supervisor": "Supervisor", "admin": "Admin"},
    }
    enqueue_template(
        db(),
        dealer(),
        key=f"invitation:{user.id}:{token[-16:]}",
        purpose="invitation",
        template="invitation",
        language=language,
        context={
            "name": user.name or user.email,
            "email": user.email,
            "inviter": inviter,
            "role_label": role_label.get(language, role_label["de"]).get(user.role, user.role),
            "link": invitation_link(token),
            "valid_days": invitations.MAX_AGE_SECONDS // 86400,
            "dealer_name": dealer().name,
        },
        to=[(user.name or "", user.email)],
    )


@bp.route("/setup/invite", methods=["GET", "POST"])
@admin_required
def invite() -> ResponseReturnValue:
    form = InviteForm(data={"role": UserRole.SALESPERSON.value})
    links = bool(dealer().base_url)
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        if not links:
            flash(
                _(
                    "Invitations carry a link to mailgate: set the web address (base URL) "
                    "under Settings → General first."
                ),
                "error",
            )
        elif db().scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
            form.email.errors = [_("A user with this address exists already.")]
        else:
            document = load()
            document["users"].append(
                {
                    "email": email,
                    "name": (form.name.data or "").strip(),
                    "role": form.role.data,
                    "receives_leads": form.role.data == UserRole.SALESPERSON.value,
                }
            )
            try:
                save(document)
            except SettingsError as exc:
                index = len(document["users"]) - 1
                fields = {f"users[{index}].email": form.email, f"users[{index}].name": form.name}
                if not attach_error(str(exc), fields):
                    flash(plain(str(exc)), "error")
            else:
                user = db().scalar(select(User).where(func.lower(User.email) == email))
                assert user is not None  # just saved
                queue_invitation(user, me().name or me().email)
                db().commit()
                log.info("invitation for %s queued by %s", email, me().email)
                flash(
                    _(
                        "%(name)s was invited: the mail with the link is on its way.",
                        name=user.name,
                    ),
                    "info",
                )
                return redirect(url_for("onboarding.invite"))
    invited = db().scalars(select(User).where(User.active).order_by(User.id)).all()
    return render_template(
        "onboarding/invite.html", form=form, links=links, users=invited, roles=dict(ROLES)
    )


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> ResponseReturnValue:
    """The invited user sets his password (the link works once, for seven days)."""
    user = invitations.user_for_token(db(), str(current_app.secret_key or ""), token)
    if user is None:
        return render_template("onboarding/invite_invalid.html"), 410
    form = AcceptForm()
    if form.validate_on_submit():
        try:
            check_strength(form.password.data or "", user.email)
        except WeakPassword as exc:
            form.password.errors.append(_("Password too weak: %(why)s", why=str(exc)))
            return render_template("onboarding/invite_accept.html", form=form, user=user), 400
        user.password_hash = hash_password(form.password.data or "")
        clear_throttle_for(user.email)
        db().commit()
        log.info("invitation accepted: %s set a password", user.email)
        flash(_("Your password is set. Please log in with %(email)s.", email=user.email), "info")
        return redirect(url_for("accounts.login"))
    return render_template("onboarding/invite_accept.html", form=form, user=user)


def clear_throttle_for(email: str) -> None:
    """A fresh password starts without the failed logins counted before it."""
    client = throttle.Client(
        ip=(request.remote_addr or "unknown")[:64], device=devices.known_device(request, email)
    )
    throttle.clear(db(), email, client)
