"""Enter a lead by hand (walk-in, phone call) and decide about a possible duplicate customer.

Step 1: the form (``/leads/new``).  Step 2, only when the customer may already
exist: every candidate side by side with the typed data; the user ticks the
fields to take over and chooses update / keep / new customer.  The typed data
travels along as hidden fields, so nothing is stored before the decision.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from mailgate.distribution.actions import ActionError as DistributionError
from mailgate.distribution.manual import (
    MANUAL_FIELDS,
    CustomerChoice,
    ManualLead,
    create_manual_lead,
    possible_duplicates,
)
from mailgate.escalation.actions import ActionError as EscalationError
from mailgate.models import Lead, utcnow

from ..access import lead_scope, me
from ..context import db, dealer
from .errors import explain
from .forms import CUSTOMER_LABELS
from .manual_forms import BIRTH_DATE, CUSTOMER_FIELDS, DuplicateForm, ManualLeadForm
from .views import bp

ERRORS = (DistributionError, EscalationError)
FIELD_LABELS = {**CUSTOMER_LABELS, "birth_date": BIRTH_DATE}


@bp.route("/leads/new", methods=["GET", "POST"])
@login_required
def new_lead() -> ResponseReturnValue:
    form = ManualLeadForm()
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("lead/new.html", form=form), status
    data = _lead_of(form)
    decision = DuplicateForm()
    chosen = _choice(decision)
    if chosen is None:
        candidates = possible_duplicates(db(), data.customer, dealer().country)
        if candidates:
            rows = [_comparison(c.customer, data.customer) for c in candidates]
            return render_template(
                "lead/duplicates.html",
                form=form,
                decision=decision,
                candidates=list(zip(candidates, rows, strict=True)),
            )
        chosen = CustomerChoice("new")
    try:
        lead_id = create_manual_lead(
            db(), dealer(), data, chosen, actor=me().email, now=utcnow(), keep=form.keep.data
        )
    except ERRORS as exc:
        db().rollback()
        flash(_("Not saved: %(why)s", why=explain(str(exc))), "error")
        return render_template("lead/new.html", form=form), 400
    db().commit()
    visible = db().scalar(select(Lead.id).where(Lead.id == lead_id, lead_scope(me())))
    flash(_("Lead %(id)s created.", id=lead_id), "success")
    if visible is None:  # distribution gave it to a colleague this user does not oversee
        return redirect(url_for("leads.lead_list"))
    return redirect(url_for("lead.detail", lead_id=lead_id))


def _choice(decision: DuplicateForm) -> CustomerChoice | None:
    """The duplicate decision, if this POST carries one (step 2)."""
    if decision.choose_new.data:
        return CustomerChoice("new")
    if not (decision.choose_keep.data or decision.choose_update.data):
        return None
    raw = (decision.duplicate_of.data or "").strip()
    customer_id = int(raw) if raw.isdigit() else None
    if decision.choose_keep.data:
        return CustomerChoice("keep", customer_id)
    take = frozenset(v for v in request.form.getlist("take_over") if v in MANUAL_FIELDS)
    return CustomerChoice("update", customer_id, take)


def _lead_of(form: ManualLeadForm) -> ManualLead:
    def text(name: str) -> str:
        return (getattr(form, name).data or "").strip()

    customer: dict[str, Any] = {name: text(name) or None for name in CUSTOMER_FIELDS}
    customer["salutation"] = text("salutation") or None
    customer["birth_date"] = form.birth_date.data
    return ManualLead(
        customer=customer,
        origin=text("origin"),
        origin_detail=text("origin_detail"),
        kind=form.kind.data or "inquiry",
        vehicle={"make": text("make"), "model": text("model"), "price": text("price")},
        current_vehicle={
            "make": text("current_make"),
            "model": text("current_model"),
            "first_registration": text("current_first_registration"),
            "mileage": text("current_mileage"),
        },
        usage=form.usage.data or None,
        interests=tuple(form.interests.data or ()),
        remark=text("remark"),
        qualification=form.qualification.data or None,
    )


def _comparison(existing: dict[str, Any], typed: dict[str, Any]) -> list[dict[str, Any]]:
    """Field by field: the stored value, the typed one, and whether they differ."""
    rows = []
    for name in MANUAL_FIELDS:
        if name == "name":
            continue
        old, new = existing.get(name), typed.get(name)
        rows.append(
            {
                "field": name,
                "label": FIELD_LABELS.get(name, name),
                "old": old,
                "new": new,
                "differs": new not in (None, "") and str(new) != str(old or ""),
            }
        )
    return rows
