"""The one-time set-up page that creates the first admin (the locks: mailgate.setup_lock).

It answers 404 once any admin was ever created, and otherwise only to a
request carrying a set-up token the service printed at start.  A missing,
wrong or used token gets one and the same 403 page, so a visitor learns
nothing about which it was.
"""

from __future__ import annotations

import logging

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_user
from sqlalchemy import func, select

from mailgate.models import User, UserRole
from mailgate.setup_lock import claim_setup_token, mark_admin_created, setup_open, token_valid

from ..access import Account
from ..context import db
from ..passwords import WeakPassword, check_strength, hash_password
from .forms import SetupForm

log = logging.getLogger("mailgate.webui.accounts")


def needs_setup() -> bool:
    """True while no admin was ever created: the one-time set-up page is open."""
    return setup_open(db())


def _token() -> str:
    """The token from the link (GET) or the form's hidden field (POST)."""
    source = request.form if request.method == "POST" else request.args
    return source.get("token", "")


def _refused() -> ResponseReturnValue:
    return render_template("setup_locked.html"), 403


def setup_page() -> ResponseReturnValue:
    """Show the form to a valid token; create the admin and use the token up on submit."""
    if not needs_setup():
        abort(404)
    token = _token()
    if not token_valid(db(), token):
        log.info("set-up page: no valid token from %s", request.remote_addr)
        return _refused()
    form = SetupForm()
    if not form.validate_on_submit():
        return render_template("setup.html", form=form, token=token)
    email = (form.email.data or "").strip().lower()
    password = form.password.data or ""
    try:
        check_strength(password, email)
    except WeakPassword as exc:
        form.password.errors.append(_("Password too weak: %(why)s", why=str(exc)))
        return render_template("setup.html", form=form, token=token), 400
    password_hash = hash_password(password)  # slow on purpose: before the transaction
    # A fresh transaction whose first statement is the claim (see claim_setup_token).
    db().rollback()
    if not claim_setup_token(db(), token):
        db().rollback()
        log.warning("set-up token was used already (a second request raced the first)")
        return _refused()
    user = db().scalar(select(User).where(func.lower(User.email) == email))
    if user is None:
        user = User(email=email, receives_leads=False)
        db().add(user)
    user.name = form.name.data or ""
    user.role = UserRole.ADMIN
    user.active = True
    user.password_hash = password_hash
    db().flush()
    mark_admin_created(db())
    db().commit()
    log.info("set-up: first admin %s created; the set-up page is closed for good", email)
    session.clear()
    login_user(Account.of(user))
    flash(_("Welcome! Your admin account is ready."), "info")
    # Next: what is missing until mail flows (lead addresses, relay, …) — the checklist.
    return redirect(url_for("onboarding.checklist"))
