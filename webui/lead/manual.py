"""Enter a lead by hand (walk-in, phone call) and decide about a possible duplicate customer.

Step 1: the form (``/leads/new``).  Step 2, only when the customer may already
exist: every candidate the user may see side by side with the typed data; the
user ticks the fields to take over and chooses update / keep / new customer.
The typed data travels along as hidden fields, so nothing is stored before
the decision.

Customer data is as private as the leads it came with
(:func:`..access.customer_scope`): typing a phone number or an e-mail address
must not show a colleague's customer.  A candidate outside the user's scope
is only named as "a customer with these contact details exists (assigned to
<salesperson>)", without any of his data and without his id, and only when
an exact contact key matched (a merely similar name is not reported at all).
For such a customer the user can

* hand the lead over: it is linked to the existing customer, whose data stays
  as it is, and goes through distribution as that customer's follow-up, which
  gives it to his salesperson (unless the dealership distributes follow-ups
  normally).  "I look after this customer myself" does not apply: customer
  protection, as a dealership expects.  What the user typed about the
  customer goes into the lead's remark, so the colleague sees a new phone
  number without anything being overwritten; or
* say it is a different person and create a new customer.

The foreign customer is found again on the server from the typed data and
the match (e-mail / phone / name and address) the button names, never from
an id in the form.  A customer id that is posted (update / keep) must be in
the user's scope; any other id is a 404, exactly like a colleague's lead, and
nothing is written.  Updating needs more than seeing: a customer who also has
leads outside the user's scope (seen through a pool lead, say) can be linked
as he is, but only changed by someone who sees all his leads
(:func:`..access.may_change_customer`), because his e-mail address is where
every one of those salespeople's replies goes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from mailgate.distribution.actions import ActionError as DistributionError
from mailgate.distribution.customers import _owner
from mailgate.distribution.manual import (
    MANUAL_FIELDS,
    CustomerChoice,
    Duplicate,
    ManualLead,
    create_manual_lead,
    possible_duplicates,
)
from mailgate.escalation.actions import ActionError as EscalationError
from mailgate.models import Lead, User, utcnow

from ..access import (
    lead_scope,
    may_change_customer,
    me,
    visible_customer,
    visible_customer_ids,
)
from ..context import db, dealer
from .errors import explain
from .forms import CUSTOMER_LABELS
from .manual_forms import (
    BIRTH_DATE,
    CUSTOMER_FIELDS,
    EXACT_MATCHES,
    DuplicateForm,
    ManualLeadForm,
)
from .views import bp

ERRORS = (DistributionError, EscalationError)
FIELD_LABELS = {**CUSTOMER_LABELS, "birth_date": BIRTH_DATE}
CUSTOMER_ID = re.compile(r"[0-9]{1,9}")  # not isdigit(): "٥" and 10**30 are no ids


@bp.route("/leads/new", methods=["GET", "POST"])
@login_required
def new_lead() -> ResponseReturnValue:
    form = ManualLeadForm()
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("lead/new.html", form=form), status
    data = _lead_of(form)
    decision = DuplicateForm()
    candidates = possible_duplicates(db(), data.customer, dealer().country)
    mine, theirs = _split(candidates)
    chosen = _choice(decision, theirs)
    if chosen is None:
        if mine or theirs:
            rows = [_comparison(c.customer, data.customer) for c in mine]
            return render_template(
                "lead/duplicates.html",
                form=form,
                decision=decision,
                candidates=list(zip(mine, rows, strict=True)),
                changeable={c.customer["id"] for c in mine if _changeable(c.customer["id"])},
                foreign=[(c.how, _assigned_to(c.customer["id"])) for c in theirs],
            )
        chosen = CustomerChoice("new")
    handed_over = decision.choose_hand_over.data and chosen.action == "keep"
    if handed_over:
        data = replace(data, remark=_with_typed_contact(data))
    keep = bool(form.keep.data) and not handed_over
    try:
        lead_id = create_manual_lead(
            db(), dealer(), data, chosen, actor=me().email, now=utcnow(), keep=keep
        )
    except ERRORS as exc:
        db().rollback()
        flash(_("Not saved: %(why)s", why=explain(str(exc))), "error")
        return render_template("lead/new.html", form=form), 400
    db().commit()
    return _created(lead_id, handed_over)


def _created(lead_id: int, handed_over: bool) -> ResponseReturnValue:
    visible = db().scalar(select(Lead.id).where(Lead.id == lead_id, lead_scope(me())))
    if handed_over:
        assignee = db().scalar(
            select(User).join(Lead, Lead.assignee_id == User.id).where(Lead.id == lead_id)
        )
        name = (assignee.name or assignee.email) if assignee is not None else "–"
        flash(_("Lead %(id)s created and handed to %(name)s.", id=lead_id, name=name), "success")
    else:
        flash(_("Lead %(id)s created.", id=lead_id), "success")
    if visible is None:  # distribution gave it to a colleague this user does not oversee
        return redirect(url_for("leads.lead_list"))
    return redirect(url_for("lead.detail", lead_id=lead_id))


def _split(candidates: list[Duplicate]) -> tuple[list[Duplicate], list[Duplicate]]:
    """(the candidates the user may see, the others that matched an exact contact key)."""
    seen = visible_customer_ids(db(), me(), [c.customer["id"] for c in candidates])
    mine = [c for c in candidates if c.customer["id"] in seen]
    theirs = [c for c in candidates if c.customer["id"] not in seen and c.how in EXACT_MATCHES]
    return mine, theirs


def _assigned_to(customer_id: int) -> str:
    """The name of the customer's salesperson (his latest lead's), or "–" when there is none."""
    pool = dealer().document["distribution"].get("pool_user") or ""
    email = _owner(db(), customer_id, pool)
    user = db().scalar(select(User).where(User.email == email)) if email else None
    return (user.name or user.email) if user is not None else "–"


def _choice(decision: DuplicateForm, theirs: list[Duplicate]) -> CustomerChoice | None:
    """The duplicate decision, if this POST carries one (step 2); 404 for a foreign id."""
    if decision.choose_new.data:
        return CustomerChoice("new")
    if decision.choose_hand_over.data:
        how = decision.hand_over.data or ""
        found = [c.customer["id"] for c in theirs if c.how == how]
        # None: the match is gone (or the customer is visible now): ask again.
        return CustomerChoice("keep", found[0]) if found else None
    if not (decision.choose_keep.data or decision.choose_update.data):
        return None
    raw = (decision.duplicate_of.data or "").strip()
    if not CUSTOMER_ID.fullmatch(raw):
        abort(404)
    customer_id = visible_customer(int(raw)).id
    if decision.choose_keep.data:
        return CustomerChoice("keep", customer_id)
    if not _changeable(customer_id):
        abort(403)  # he is seen through one lead, but colleagues' leads use his data too
    take = frozenset(v for v in request.form.getlist("take_over") if v in MANUAL_FIELDS)
    return CustomerChoice("update", customer_id, take)


def _changeable(customer_id: int) -> bool:
    return may_change_customer(db(), me(), customer_id)


def _with_typed_contact(data: ManualLead) -> str:
    """The remark plus what the user typed about the customer (for the colleague to check)."""
    typed = [
        f"{FIELD_LABELS.get(name, name)}: {value}"
        for name in MANUAL_FIELDS
        if name != "name" and (value := data.customer.get(name)) not in (None, "")
    ]
    if not typed:
        return data.remark
    entered = "; ".join(typed)
    note = _("Customer data as entered by %(user)s: %(data)s", user=me().name, data=entered)
    return f"{data.remark}\n\n{note}".strip()


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
