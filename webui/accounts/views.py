"""Login, logout, first-admin setup, password reset by mail link, own account.

Messages never say whether an address has an account (login failure and the
reset form answer the same either way).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from mailgate.models import User, UserRole, utcnow
from mailgate.outbound.outbox import enqueue_template

from ..access import Account, end_sessions, me
from ..context import db, dealer, settings
from ..i18n import LANGUAGES
from ..passwords import WeakPassword, check_strength, hash_password, needs_rehash, verify_password
from . import reset, throttle
from .forms import AccountForm, ChangePasswordForm, ForgotForm, LoginForm, ResetForm, SetupForm

log = logging.getLogger("mailgate.webui.accounts")
bp = Blueprint("accounts", __name__)


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: ``?next=https://evil.example`` must not redirect away."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("home")


def needs_setup() -> bool:
    """True while no admin can log in: the one-time setup page is open."""
    return not db().scalar(
        select(func.count()).where(
            User.role == UserRole.ADMIN, User.password_hash.is_not(None), User.active.is_(True)
        )
    )


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
        email, ip, now = form.email.data or "", _client_ip(), utcnow()
        verdict = throttle.check(db(), email, ip, now)
        if not verdict.allowed:
            minutes = max(int(verdict.retry_after.total_seconds() // 60) + 1, 1)
            flash(
                _("Too many failed attempts. Try again in %(minutes)d minutes.", minutes=minutes),
                "error",
            )
            return render_template("login.html", form=form), 429
        user = _find_user(email)
        if (
            user is not None
            and user.active
            and verify_password(user.password_hash, form.password.data or "")
        ):
            throttle.clear(db(), email)
            if user.password_hash and needs_rehash(user.password_hash):
                user.password_hash = hash_password(form.password.data or "")
            db().commit()
            session.clear()  # no fixation: a fresh session after login
            login_user(Account.of(user))
            refresh()
            log.info("login: %s", user.email)
            return redirect(_safe_next(request.args.get("next")))
        throttle.record_failure(db(), email, ip, now)
        db().commit()
        log.info("failed login for %r from %s", email, ip)
        flash(_("E-mail address or password is wrong."), "error")
        return render_template("login.html", form=form), 401
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        end_sessions(me().id)  # W6: a copy of the cookie is no good after logout
    logout_user()
    session.clear()
    return redirect(url_for("accounts.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> ResponseReturnValue:
    """Create the first admin; closed for good once an admin can log in."""
    if not needs_setup():
        abort(404)
    form = SetupForm()
    if form.validate_on_submit():
        try:
            check_strength(form.password.data or "", form.email.data or "")
        except WeakPassword as exc:
            form.password.errors.append(_("Password too weak: %(why)s", why=str(exc)))
            return render_template("setup.html", form=form), 400
        user = _find_user(form.email.data or "")
        if user is None:
            user = User(email=(form.email.data or "").strip().lower(), receives_leads=False)
            db().add(user)
        user.name = form.name.data or ""
        user.role = UserRole.ADMIN
        user.active = True
        user.password_hash = hash_password(form.password.data or "")
        db().commit()
        session.clear()
        login_user(Account.of(user))
        flash(_("Welcome! Your admin account is ready."), "info")
        return redirect(url_for("home"))
    return render_template("setup.html", form=form)


def _reset_link(token: str) -> str:
    base = settings().web.base_url.rstrip("/") or request.host_url.rstrip("/")
    return base + url_for("accounts.reset_password", token=token)


def queue_reset_mail(user: User) -> None:
    """Queue the mail with a link to set a new password (forgot page, new users; no commit)."""
    token = reset.make_token(current_app.secret_key or "", user)
    enqueue_template(
        db(),
        dealer(),
        key=f"password-reset:{user.id}:{token[-16:]}",
        purpose="password_reset",
        template="password_reset",
        language=user.language or dealer().language,
        context={
            "name": user.name or user.email,
            "link": _reset_link(token),
            "valid_minutes": reset.MAX_AGE_SECONDS // 60,
            "dealer_name": dealer().name,
        },
        to=[(user.name or "", user.email)],
    )


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> ResponseReturnValue:
    form = ForgotForm()
    if form.validate_on_submit():
        email, ip, now = form.email.data or "", _client_ip(), utcnow()
        # Reset requests count like failed logins: no mail bombing of an address.
        if throttle.check(db(), email, ip, now).allowed:
            throttle.record_failure(db(), email, ip, now)
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
        throttle.clear(db(), user.email)
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
