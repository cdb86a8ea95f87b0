"""Login, logout, first-admin setup, password reset by mail link, own account.

Messages never say whether an address has an account (login failure and the
reset form answer the same either way).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from math import ceil
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta, refresh
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from mailgate.base_url import WHAT_TO_SET
from mailgate.models import User, utcnow
from mailgate.outbound.outbox import enqueue_template

from ..access import Account, end_sessions, me
from ..context import db, dealer
from ..i18n import LANGUAGES
from ..passwords import WeakPassword, check_strength, hash_password, needs_rehash, verify_password
from . import devices, first_admin, reset, throttle
from .first_admin import needs_setup
from .forms import AccountForm, ChangePasswordForm, ForgotForm, LoginForm, ResetForm

log = logging.getLogger("mailgate.webui.accounts")
bp = Blueprint("accounts", __name__)


# Shown where a feature would mail a link but no base URL is set (see mailgate.base_url).
RESET_NOT_SET_UP = _l("Password reset is not set up - please ask the administrator.")
LINKS_NOT_SET_UP_ADMIN = _l(
    "Mails with links need the web address of mailgate: set it under Settings → General "
    "(the dealer setting base_url, e.g. https://leads.autohaus.example). Until then no link "
    "to set a password can be sent."
)


class LinksNotConfigured(RuntimeError):
    """No base URL: a mail with a link to this site cannot be built."""


def links_configured() -> bool:
    """True when mails may carry links to the web UI (a base URL is set)."""
    return bool(dealer().base_url)


def _client_ip() -> str:
    """The client's address: the peer, or what a trusted proxy says (webui.hosts)."""
    return (request.remote_addr or "unknown")[:64]


def _client(email: str) -> throttle.Client:
    return throttle.Client(ip=_client_ip(), device=devices.known_device(request, email))


def _wait_text(wait: timedelta) -> str:
    """``3 Sekunden`` / ``15 Minuten``: how long to wait, in the user's language."""
    return format_timedelta(
        max(wait, timedelta(seconds=1)), granularity="second", add_direction=False
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site: ``?next=https://evil.example`` must not redirect away."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("home")


def _find_user(email: str) -> User | None:
    return db().scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


@bp.route("/language/<code>", methods=["POST"])
def choose_language(code: str) -> ResponseReturnValue:
    """The language switch before login (logged-in users set theirs on the account page)."""
    if code not in LANGUAGES:
        abort(404)
    session["language"] = code
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if needs_setup():
        return redirect(url_for("accounts.setup"))
    form = LoginForm()
    if form.validate_on_submit():
        email, password, now = form.email.data or "", form.password.data or "", utcnow()
        client = _client(email)
        verdict = throttle.check(db(), email, client, now)
        if not verdict.allowed:
            return _throttled(form, email, client, verdict)
        user = _find_user(email)
        # Unknown, deactivated and password-less accounts are checked against a dummy
        # hash: the answer takes as long as for a real account (no enumeration by time).
        stored = user.password_hash if user is not None and user.active else None
        if verify_password(stored, password) and user is not None:
            return _logged_in(user, password, client)
        throttle.record_failure(db(), email, client, now)
        db().commit()
        log.info("failed login for %r from %s", email, client.key)
        flash(_("E-mail address or password is wrong."), "error")
        return render_template("login.html", form=form), 401
    return render_template("login.html", form=form)


def _throttled(
    form: LoginForm, email: str, client: throttle.Client, verdict: throttle.Verdict
) -> ResponseReturnValue:
    """429 with the time to wait (also in ``Retry-After``); the log says which limit."""
    log.info("login for %r from %s throttled (%s)", email, client.key, verdict.reason)
    flash(
        _(
            "Too many failed attempts. Please try again in %(wait)s.",
            wait=_wait_text(verdict.retry_after),
        ),
        "error",
    )
    response = make_response(render_template("login.html", form=form), 429)
    response.headers["Retry-After"] = str(max(1, ceil(verdict.retry_after.total_seconds())))
    return response


def _logged_in(user: User, password: str, client: throttle.Client) -> ResponseReturnValue:
    throttle.clear(db(), user.email, client)
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    db().commit()
    session.clear()  # no fixation: a fresh session after login
    login_user(Account.of(user))
    refresh()
    log.info("login: %s", user.email)
    response = redirect(_safe_next(request.args.get("next")))
    secure = current_app.session_interface.get_cookie_secure(current_app)
    devices.remember(request, response, user.email, secure=secure)
    return response


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        end_sessions(me().id)  # W6: a copy of the cookie is no good after logout
    logout_user()
    session.clear()
    return redirect(url_for("accounts.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> ResponseReturnValue:
    """Create the first admin: only while none was ever created, only with the printed token."""
    return first_admin.setup_page()


def _reset_link(token: str) -> str:
    """Only from the configured base URL, never from the request's Host header: a forged
    Host would otherwise send a working reset link to the attacker's server."""
    base = dealer().base_url.rstrip("/")
    if not base:
        raise LinksNotConfigured("no base URL")
    return base + url_for("accounts.reset_password", token=token)


def queue_reset_mail(user: User) -> None:
    """Queue the mail with a link to set a new password (forgot page, new users; no commit).

    Raises :class:`LinksNotConfigured` without a base URL (callers check
    :func:`links_configured` first and tell the user what is missing).
    """
    token = reset.make_token(current_app.secret_key or "", user)
    link = _reset_link(token)
    enqueue_template(
        db(),
        dealer(),
        key=f"password-reset:{user.id}:{token[-16:]}",
        purpose="password_reset",
        template="password_reset",
        language=user.language or dealer().language,
        context={
            "name": user.name or user.email,
            "link": link,
            "valid_minutes": reset.MAX_AGE_SECONDS // 60,
            "dealer_name": dealer().name,
        },
        to=[(user.name or "", user.email)],
    )


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> ResponseReturnValue:
    if not links_configured():
        log.warning("password reset requested, but no base URL is set: %s", WHAT_TO_SET)
        flash(str(RESET_NOT_SET_UP), "error")
        return render_template("forgot.html", form=None), 503
    form = ForgotForm()
    if form.validate_on_submit():
        email, ip, now = form.email.data or "", _client_ip(), utcnow()
        # Counted apart from logins: no mail bombing, and nobody's login slows down.
        if throttle.reset_allowed(db(), email, ip, now):
            throttle.record_reset(db(), email, ip, now)
            user = _find_user(email)
            if user is not None and user.active:
                queue_reset_mail(user)
            db().commit()
        flash(
            _("If the address belongs to an account, a link to set a new password is on its way."),
            "info",
        )
        return redirect(url_for("accounts.login"))
    return render_template("forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> ResponseReturnValue:
    user = reset.user_for_token(db(), current_app.secret_key or "", token)
    if user is None:
        flash(_("This link is invalid, expired or was already used."), "error")
        return redirect(url_for("accounts.forgot_password"))
    form = ResetForm()
    if form.validate_on_submit():
        try:
            check_strength(form.password.data or "", user.email)
        except WeakPassword as exc:
            form.password.errors.append(_("Password too weak: %(why)s", why=str(exc)))
            return render_template("reset.html", form=form), 400
        user.password_hash = hash_password(form.password.data or "")
        throttle.clear(db(), user.email, _client(user.email))
        db().commit()
        flash(_("Your password was changed. Please log in."), "info")
        return redirect(url_for("accounts.login"))
    return render_template("reset.html", form=form)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> ResponseReturnValue:
    """The user's own settings: language and password."""
    user = db().get(User, me().id) or abort(404)
    prefs = AccountForm(prefix="prefs", language=user.language)
    password = ChangePasswordForm(prefix="pw")
    if request.method == "POST" and request.form.get("form") == "prefs" and prefs.validate():
        user.language = prefs.language.data or "de"
        db().commit()
        login_user(Account.of(user))
        refresh()
        flash(_("Saved."), "info")
        return redirect(url_for("accounts.account"))
    if request.method == "POST" and request.form.get("form") == "password" and password.validate():
        if not verify_password(user.password_hash, password.current.data or ""):
            password.current.errors.append(_("The current password is wrong."))
        else:
            try:
                check_strength(password.password.data or "", user.email)
            except WeakPassword as exc:
                password.password.errors.append(_("Password too weak: %(why)s", why=str(exc)))
            else:
                user.password_hash = hash_password(password.password.data or "")
                db().commit()
                login_user(Account.of(user))  # this session stays, all others end
                flash(_("Your password was changed."), "info")
                return redirect(url_for("accounts.account"))
    return render_template("account.html", prefs=prefs, password=password, user=user)
