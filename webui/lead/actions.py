"""Every action on one lead: a POST with CSRF, the scope and role check, a service call.

The views stay thin: the service functions (escalation.actions,
distribution.actions, distribution.edits) validate, change the lead and write
the protocol; this module checks who may, commits, and tells the user in
plain words what happened.  A refused action (``ActionError``) is rolled back
and shown as an error; the lead stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response

from mailgate.completion import completion_reasons
from mailgate.distribution import actions as distribution
from mailgate.distribution import handback
from mailgate.distribution.edits import CUSTOMER_EDIT_FIELDS, VEHICLE_EDIT_FIELDS, edit_lead
from mailgate.escalation import actions as escalation
from mailgate.models import OPEN_STATUSES, Customer, Lead, utcnow

from ..access import admin_required, lead_scope, may_change_customer, me, visible_lead
from ..choices import options
from ..context import db, dealer
from ..labels import label
from . import dialogs
from .errors import explain
from .forms import (
    NO_CHOICE,
    CloseForm,
    ConfirmForm,
    ContactForm,
    DeleteForm,
    DueForm,
    EditForm,
    HandBackForm,
    QualificationForm,
    ReassignForm,
    ResubmissionForm,
    StageForm,
    to_utc,
)
from .rules import assignable_users, in_pool, may_act
from .views import bp

ACTION_ERRORS = (escalation.ActionError, distribution.ActionError)
SHARED_CUSTOMER = _l(
    "Not saved: colleagues also look after this customer; only someone who sees all his "
    "leads can change his data."
)
F = TypeVar("F", bound=FlaskForm)


def _acting(lead_id: int) -> Lead:
    """The lead, if visible (404) and the user may act on it (403)."""
    lead = visible_lead(lead_id)
    if not may_act(me(), lead):
        abort(403)
    return lead


def _back(lead_id: int) -> Response:
    """Back to the lead, or to the list when it is no longer visible (given away, deleted)."""
    still = db().scalar(select(Lead.id).where(Lead.id == lead_id, lead_scope(me())))
    if still is None:
        return redirect(url_for("leads.lead_list"))
    return redirect(url_for("lead.detail", lead_id=lead_id))


def _form_errors(form: FlaskForm, lead_id: int) -> None:
    """Each error flashed, and the form's dialog opens again on the lead with them inside."""
    said = [f"{field.label.text}: {error}" for field in form for error in field.errors]
    for message in said:
        flash(message, "error")
    dialogs.reopen(lead_id, request.endpoint or "", said)


def _validated(form: F, lead_id: int) -> F:
    """The submitted form if valid; else its errors are flashed and we go back to the lead.

    ``abort`` with a response ends the request with that redirect (not an error page).
    """
    if not form.validate_on_submit():
        _form_errors(form, lead_id)
        abort(redirect(url_for("lead.detail", lead_id=lead_id)))
    return form


def _run(lead_id: int, act: Callable[[], object], success: Callable[[], str]) -> Response:
    """Run the service call; commit and flash ``success()``, or roll back and flash why not."""
    try:
        act()
    except ACTION_ERRORS as exc:
        db().rollback()
        said = _("Not done: %(why)s", why=explain(str(exc)))
        flash(said, "error")
        dialogs.reopen(lead_id, request.endpoint or "", [said])
        return redirect(url_for("lead.detail", lead_id=lead_id))
    db().commit()
    flash(success(), "success")
    return _back(lead_id)


def _when(moment: object) -> str:
    from ..i18n import local_time

    return local_time(moment)  # type: ignore[arg-type]


@bp.post("/leads/<int:lead_id>/contact")
@login_required
def contact(lead_id: int) -> ResponseReturnValue:
    _acting(lead_id)
    form = _validated(ContactForm(), lead_id)
    return _run(
        lead_id,
        lambda: escalation.log_contact(
            db(),
            lead_id,
            me().email,
            utcnow(),
            channel=form.channel.data,
            note=form.note.data or "",
            outcome=form.outcome.data,
            dealer=dealer(),
        ),
        lambda: (
            _("Contact logged: the lead counts as answered.")
            if form.outcome.data == "reached"
            else _("Attempt logged: the lead is not answered yet; try again later (see My day).")
        ),
    )


@bp.post("/leads/<int:lead_id>/resubmission")
@login_required
def resubmission(lead_id: int) -> ResponseReturnValue:
    _acting(lead_id)
    form = _validated(ResubmissionForm(), lead_id)
    when = to_utc(form.when.data, dealer().timezone)
    return _run(
        lead_id,
        lambda: escalation.set_resubmission(db(), dealer(), lead_id, me().email, utcnow(), when),
        lambda: _("Resubmission set for %(when)s.", when=_when(when)),
    )


@bp.post("/leads/<int:lead_id>/due")
@login_required
def due(lead_id: int) -> ResponseReturnValue:
    _acting(lead_id)
    form = _validated(DueForm(), lead_id)
    when = to_utc(form.when.data, dealer().timezone)
    return _run(
        lead_id,
        lambda: escalation.move_due(db(), dealer(), lead_id, me().email, utcnow(), when),
        lambda: _("Due date changed to %(when)s.", when=_when(when)),
    )


@bp.post("/leads/<int:lead_id>/qualification")
@login_required
def qualification(lead_id: int) -> ResponseReturnValue:
    _acting(lead_id)
    form = _validated(QualificationForm(), lead_id)
    value = form.value.data
    return _run(
        lead_id,
        lambda: escalation.set_qualification(db(), dealer(), lead_id, me().email, utcnow(), value),
        lambda: _("Qualification set: %(value)s.", value=label(value, "qualification")),
    )


@bp.post("/leads/<int:lead_id>/stage")
@login_required
def stage(lead_id: int) -> ResponseReturnValue:
    """A rung of the sales ladder: contacted, test drive, offer, contract."""
    _acting(lead_id)
    form = _validated(StageForm(), lead_id)
    value = form.stage.data or ""
    return _run(
        lead_id,
        lambda: escalation.set_stage(db(), lead_id, me().email, utcnow(), value),
        lambda: _("Status set: %(status)s.", status=label(value, "lead_status")),
    )


@bp.post("/leads/<int:lead_id>/reassign")
@login_required
def reassign(lead_id: int) -> ResponseReturnValue:
    lead = _acting(lead_id)
    form = ReassignForm()
    targets = {u.email: u.name or u.email for u in assignable_users(db(), lead)}
    form.to.choices = options((NO_CHOICE, *targets.items()))
    _validated(form, lead_id)
    to, note = form.to.data, (form.note.data or "").strip()
    if form.forward.data:
        if not note:
            said = _("Forwarding needs a note for the colleague.")
            flash(said, "error")
            dialogs.reopen(lead_id, request.endpoint or "", [said])
            return redirect(url_for("lead.detail", lead_id=lead_id))
        return _run(
            lead_id,
            lambda: distribution.forward(
                db(), dealer(), lead_id, to, actor=me().email, note=note, now=utcnow()
            ),
            lambda: _("Lead forwarded to %(name)s with your note.", name=targets[to]),
        )
    return _run(
        lead_id,
        lambda: distribution.reassign(
            db(), dealer(), [lead_id], to, actor=me().email, note=note, now=utcnow()
        ),
        lambda: _("Lead reassigned to %(name)s.", name=targets[to]),
    )


@bp.post("/leads/<int:lead_id>/take")
@login_required
def take(lead_id: int) -> ResponseReturnValue:
    lead = visible_lead(lead_id)
    if not in_pool(db(), lead):
        abort(403)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _run(
        lead_id,
        lambda: distribution.take_from_pool(db(), dealer(), lead_id, me().email, now=utcnow()),
        lambda: _("You have taken the lead from the pool: it is yours now."),
    )


@bp.post("/leads/<int:lead_id>/close")
@login_required
def close(lead_id: int) -> ResponseReturnValue:
    _acting(lead_id)
    form = CloseForm()
    reasons = {r.code: r.label for r in completion_reasons(dealer().document) if not r.hidden}
    form.reason.choices = options((NO_CHOICE, *reasons.items()))
    _validated(form, lead_id)
    code = form.reason.data
    return _run(
        lead_id,
        lambda: escalation.close_lead(db(), lead_id, me().email, utcnow(), reason=code),
        lambda: _("Lead closed: %(reason)s.", reason=reasons[code]),
    )


@bp.post("/leads/<int:lead_id>/reopen")
@login_required
def reopen(lead_id: int) -> ResponseReturnValue:
    _acting(lead_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _run(
        lead_id,
        lambda: escalation.reopen_lead(db(), dealer(), lead_id, me().email, utcnow()),
        lambda: _("Lead reopened."),
    )


@bp.post("/leads/<int:lead_id>/hand-back")
@admin_required
def hand_back(lead_id: int) -> ResponseReturnValue:
    """Admins hand a lead back from the source's call centre (to its owner or distribution)."""
    visible_lead(lead_id)
    form = _validated(HandBackForm(), lead_id)
    return _run(
        lead_id,
        lambda: handback.hand_back(db(), dealer(), lead_id, me().email, utcnow(), to=form.to.data),
        lambda: _("Handed back from the call centre: the lead can be worked on again."),
    )


@bp.post("/leads/<int:lead_id>/delete")
@admin_required
def delete(lead_id: int) -> ResponseReturnValue:
    visible_lead(lead_id)
    form = DeleteForm()
    if not form.validate_on_submit():
        said = _("Tick the box to confirm the deletion.")
        flash(said, "error")
        dialogs.reopen(lead_id, request.endpoint or "", [said])
        return redirect(url_for("lead.detail", lead_id=lead_id))
    return _run(
        lead_id,
        lambda: distribution.delete_leads(
            db(), dealer(), [lead_id], actor=me().email, now=utcnow()
        ),
        lambda: _("Lead %(id)s deleted.", id=lead_id),
    )


def _prefill(form: FlaskForm, lead: Lead) -> None:
    customer = db().get(Customer, lead.customer_id) if lead.customer_id else None
    for name in CUSTOMER_EDIT_FIELDS:
        form[f"customer_{name}"].data = getattr(customer, name, None) or ""
    for prefix, values in (("vehicle", lead.vehicle or {}), ("trade_in", lead.trade_in or {})):
        for name in VEHICLE_EDIT_FIELDS:
            value = values.get(name)
            form[f"{prefix}_{name}"].data = "" if value is None else str(value)


def _edit_page(lead: Lead, form: FlaskForm) -> str:
    locked = lead.customer_id is not None and not may_change_customer(db(), me(), lead.customer_id)
    return render_template("lead/edit.html", lead=lead, form=form, customer_locked=locked)


@bp.route("/leads/<int:lead_id>/edit", methods=["GET", "POST"])
@login_required
def edit(lead_id: int) -> ResponseReturnValue:
    """Correct customer and vehicle data (open leads only; the protocol lists the changes)."""
    lead = _acting(lead_id)
    if lead.status not in OPEN_STATUSES:
        flash(_("Only open leads can be edited."), "error")
        return redirect(url_for("lead.detail", lead_id=lead_id))
    form = EditForm()
    if not form.is_submitted():
        _prefill(form, lead)
    elif form.validate():
        data = form.data

        def values(prefix: str, names: tuple[str, ...]) -> dict[str, str]:
            return {n: data[f"{prefix}_{n}"] for n in names}

        try:
            changes = edit_lead(
                db(),
                lead_id,
                me().email,
                utcnow(),
                customer=values("customer", CUSTOMER_EDIT_FIELDS),
                vehicle=values("vehicle", VEHICLE_EDIT_FIELDS),
                trade_in=values("trade_in", VEHICLE_EDIT_FIELDS),
            )
        except ACTION_ERRORS as exc:
            db().rollback()
            flash(_("Not saved: %(why)s", why=explain(str(exc))), "error")
            return _edit_page(lead, form), 400
        if lead.customer_id is not None and any(c.code == "customer_changed" for c in changes):
            if not may_change_customer(db(), me(), lead.customer_id):
                # his data serves colleagues' leads too (his e-mail: where their replies go)
                db().rollback()
                flash(str(SHARED_CUSTOMER), "error")
                return _edit_page(lead, form), 403
        db().commit()
        if changes:
            flash(_("Changes saved (%(count)s).", count=len(changes)), "success")
        else:
            flash(_("Nothing was changed."), "success")
        return redirect(url_for("lead.detail", lead_id=lead_id))
    status = 400 if form.is_submitted() else 200
    return _edit_page(lead, form), status
