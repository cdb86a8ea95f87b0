"""The customer file: list and search, one customer's page, merge, open checks, move a lead.

Who may do what (one rule each, checked on the server for every request):

* **See** a customer: :func:`..access.customer_scope`, i.e. he has a lead the
  user may see; anyone else's customer is a 404, as a colleague's lead is.
  On his page the user sees the leads (and their messages) he may open, and
  only the number of the others.
* **Merge** two customers: supervisors and admins only (a merge rewrites the
  data every salesperson of the customer relies on, and moves leads), and
  only when they may change *both* customers
  (:func:`..access.may_change_customer`: every lead of each in their scope);
  otherwise 403.  A salesperson who finds a duplicate asks his supervisor.
* **Decide a "please check" task** (update / keep / new): whoever may change
  the new customer (he sees all of its leads, usually the one mailed lead);
  "update" also needs may-change on the known customer, "keep" only sight.
* **Move a lead** to another customer: whoever may act on the lead (the lead
  page's rule, :func:`..lead.rules.may_act`) and may see the target customer.

Ids in forms are checked like ids in URLs: outside the scope a 404.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import func, select

from mailgate.distribution.customer_file import (
    MERGE_FIELDS,
    CustomerFileError,
    decide_check,
    differing_fields,
    merge_customers,
    relink_lead,
    survivor_of,
)
from mailgate.models import Customer, utcnow

from ..access import may_change_customer, me, visible_customer, visible_lead
from ..context import db, dealer
from ..input_limits import DB_INT_MAX
from ..lead.rules import may_act
from ..paging import Page
from . import queries
from .forms import FIELD_LABELS, CheckForm, MergeForm, RelinkForm

bp = Blueprint("customers", __name__)


def _region() -> str:
    return str(dealer().document["dealer"].get("country") or "DE")


def _dialect() -> str:
    return db().get_bind().dialect.name


def _id(raw: str | None) -> int | None:
    """A customer id typed or posted: ASCII digits within the database's integer, else None."""
    text = (raw or "").strip().lstrip("#")
    if text.isascii() and text.isdigit() and 0 < int(text) <= DB_INT_MAX:
        return int(text)
    return None


def _explain(exc: CustomerFileError) -> str:
    return {
        "same_customer": _("A customer cannot be merged with himself."),
        "already_merged": _(
            "One of the customers was merged in the meantime. Nothing was changed; "
            "please open the customer again."
        ),
        "not_found": _("The customer no longer exists."),
        "no_check": _("This customer has no open check."),
        "bad_decision": _("Please choose one of the three answers."),
    }.get(exc.code, _("Nothing was changed."))


def _listing(where: Any, order: list[Any], title: str, query: str) -> str:
    session = db()
    total = session.scalar(select(func.count()).select_from(Customer).where(where)) or 0
    page = Page.from_request(int(total))
    ids = list(
        session.scalars(
            select(Customer.id).where(where).order_by(*order).offset(page.offset).limit(page.size)
        )
    )
    return render_template(
        "customers/list.html",
        rows=queries.customer_rows(session, ids, me()),
        page=page,
        q=query,
        title=title,
        checks=request.endpoint == "customers.checks",
        open_checks=_open_checks(),
    )


def _open_checks() -> int:
    where = queries.visible_customers(me(), db())
    found = db().scalar(
        select(func.count()).select_from(Customer).where(where, Customer.check_since.is_not(None))
    )
    return int(found or 0)


@bp.route("/customers")
@login_required
def customer_list() -> ResponseReturnValue:
    query = queries.clean_query(request.args.get("q"))
    where = queries.visible_customers(me(), db())
    found = queries.search_condition(query, _region(), _dialect())
    if found is not None:
        where = where & found
    order = [Customer.name.is_(None), func.lower(Customer.name), Customer.id]
    return _listing(where, order, _("Customers"), query)


@bp.route("/customers/checks")
@login_required
def checks() -> ResponseReturnValue:
    where = queries.visible_customers(me(), db()) & Customer.check_since.is_not(None)
    return _listing(where, [Customer.check_since, Customer.id], _("Customers to check"), "")


def _customer(customer_id: int) -> Customer:
    """The customer if visible (404 otherwise); a merged one is never shown himself."""
    return visible_customer(customer_id)


@bp.route("/customers/<int:customer_id>")
@login_required
def customer_detail(customer_id: int) -> ResponseReturnValue:
    session = db()
    account = me()
    if account.is_admin:  # only an admin can see a merged customer (he has no lead left)
        found = session.get(Customer, customer_id) or abort(404)
        if found.merged_into_id is not None:
            target = survivor_of(session, customer_id)
            if target is None:
                abort(404)
            flash(_("This customer was merged into this one."), "info")
            return redirect(url_for("customers.customer_detail", customer_id=target))
    customer = _customer(customer_id)
    leads = queries.leads_of(session, customer.id, account)
    lead_ids = [lead.id for lead in leads]
    may_merge = _may_merge(customer.id)
    return render_template(
        "customers/detail.html",
        customer=customer,
        name=queries.display_name(customer),
        leads=leads,
        hidden=queries.hidden_leads(session, customer.id, account),
        messages=queries.messages_of(session, lead_ids, customer),
        vehicles=queries.vehicles_of(leads),
        salesperson=next((lead.assignee for lead in leads if lead.assignee), None),
        duplicates=queries.possible_duplicates(session, customer, account) if may_merge else [],
        candidates=queries.check_candidates(session, customer, account),
        may_merge=may_merge,
        fields=[(f, FIELD_LABELS[f]) for f in MERGE_FIELDS],
    )


def _may_merge(*customer_ids: int) -> bool:
    account = me()
    if not (account.is_admin or account.is_supervisor):
        return False
    return all(may_change_customer(db(), account, cid) for cid in customer_ids)


def _comparison(mine: Customer, other: Customer) -> list[dict[str, Any]]:
    a, b = _values(mine), _values(other)
    differs = set(differing_fields(a, b))
    return [
        {
            "field": f,
            "label": FIELD_LABELS[f],
            "mine": _shown(a.get(f)),
            "other": _shown(b.get(f)),
            "differs": f in differs,
        }
        for f in MERGE_FIELDS
    ]


def _values(customer: Customer) -> dict[str, Any]:
    return {f: getattr(customer, f) for f in MERGE_FIELDS}


def _shown(value: Any) -> str:
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value) if value not in (None, "") else "–"


@bp.route("/customers/<int:customer_id>/merge", methods=["GET", "POST"])
@login_required
def merge(customer_id: int) -> ResponseReturnValue:
    account = me()
    customer = _customer(customer_id)  # first: a foreign customer is a 404 for every role
    if request.method == "POST" and not (account.is_admin or account.is_supervisor):
        abort(403)  # a salesperson may compare (and ask his supervisor), not merge
    form = MergeForm()
    raw = form.other.data if request.method == "POST" else request.args.get("other")
    other_id = _id(raw)
    if raw and other_id is None:
        flash(_("Please enter a customer number (digits only)."), "error")
    if other_id is None:
        return render_template(
            "customers/merge.html",
            customer=customer,
            name=queries.display_name(customer),
            other=None,
            duplicates=queries.possible_duplicates(db(), customer, account),
            form=form,
            allowed=False,
        )
    if other_id == customer.id:
        flash(_explain(CustomerFileError("same_customer")), "error")
        return redirect(url_for("customers.merge", customer_id=customer.id))
    other = _customer(other_id)
    allowed = _may_merge(customer.id, other.id)
    if request.method == "POST" and not allowed:
        abort(403)  # colleagues' leads use these customers' data too
    if request.method == "POST" and form.validate_on_submit():
        take = [f for f in MERGE_FIELDS if request.form.get(f"keep_{f}") == "other"]
        try:
            result = merge_customers(
                db(), customer.id, other.id, take, actor=account.email, now=utcnow()
            )
        except CustomerFileError as exc:
            db().rollback()
            flash(_explain(exc), "error")
            return redirect(url_for("customers.customer_detail", customer_id=customer.id))
        db().commit()
        flash(
            _(
                "Customer %(other)s was merged into this customer; %(count)s leads moved.",
                other=result.merged_id,
                count=result.moved_leads,
            ),
            "info",
        )
        return redirect(url_for("customers.customer_detail", customer_id=customer.id))
    form.other.data = str(other.id)
    return render_template(
        "customers/merge.html",
        customer=customer,
        name=queries.display_name(customer),
        other=other,
        other_name=queries.display_name(other),
        rows=_comparison(customer, other),
        form=form,
        duplicates=[],
        allowed=allowed,
    )


@bp.route("/customers/<int:customer_id>/check", methods=["GET", "POST"])
@login_required
def check(customer_id: int) -> ResponseReturnValue:
    account = me()
    session = db()
    customer = _customer(customer_id)
    if customer.check_since is None:
        if request.method == "POST":
            flash(_explain(CustomerFileError("no_check")), "info")
            return redirect(url_for("customers.customer_detail", customer_id=customer.id))
        return render_template(
            "customers/check.html",
            customer=customer,
            name=queries.display_name(customer),
            candidates=None,
            form=CheckForm(),
        )
    if not may_change_customer(session, account, customer.id):
        abort(403)
    candidates = queries.check_candidates(session, customer, account)
    form = CheckForm()
    if request.method == "POST" and form.validate_on_submit():
        return _decide(customer, candidates, form)
    changeable = {c.id for c in candidates if may_change_customer(session, account, c.id)}
    return render_template(
        "customers/check.html",
        customer=customer,
        name=queries.display_name(customer),
        candidates=[(c, queries.display_name(c), _comparison(c, customer)) for c in candidates],
        scores=queries.check_scores(session, customer),
        changeable=changeable,
        form=form,
    )


def _decide(customer: Customer, candidates: list[Customer], form: CheckForm) -> ResponseReturnValue:
    account = me()
    if form.choose_new.data:
        decision, candidate_id = "new", None
    elif form.choose_update.data or form.choose_keep.data:
        decision = "update" if form.choose_update.data else "keep"
        candidate_id = _id(form.candidate.data)
        if candidate_id is None or candidate_id not in {c.id for c in candidates}:
            abort(404)  # not one of this check's customers the user may see
        if decision == "update" and not may_change_customer(db(), account, candidate_id):
            abort(403)
    else:
        flash(_explain(CustomerFileError("bad_decision")), "error")
        return redirect(url_for("customers.check", customer_id=customer.id))
    take = [f for f in request.form.getlist("take_over") if f in MERGE_FIELDS]
    try:
        decide_check(
            db(),
            customer.id,
            decision,
            candidate_id=candidate_id,
            take=take,
            actor=account.email,
            now=utcnow(),
        )
    except CustomerFileError as exc:
        db().rollback()
        flash(_explain(exc), "error")
        return redirect(url_for("customers.customer_detail", customer_id=customer.id))
    db().commit()
    if candidate_id is None:
        flash(_("Checked: a new customer."), "info")
        return redirect(url_for("customers.customer_detail", customer_id=customer.id))
    flash(_("Checked: the lead now belongs to the known customer."), "info")
    return redirect(url_for("customers.customer_detail", customer_id=candidate_id))


@bp.route("/customers/relink/<int:lead_id>", methods=["GET", "POST"])
@login_required
def relink(lead_id: int) -> ResponseReturnValue:
    account = me()
    lead = visible_lead(lead_id)
    if not may_act(account, lead):
        abort(403)
    form = RelinkForm()
    query = queries.clean_query(request.args.get("q"))
    if request.method == "POST" and form.validate_on_submit():
        target_id = _id(form.customer.data)
        if target_id is None:
            form.customer.errors = [_("Please enter a customer number (digits only).")]
        else:
            target = _customer(target_id)
            try:
                relink_lead(db(), lead.id, target.id, actor=account.email, now=utcnow())
            except CustomerFileError as exc:
                db().rollback()
                flash(_explain(exc), "error")
                return redirect(url_for("customers.relink", lead_id=lead.id))
            db().commit()
            flash(_("The lead now belongs to this customer."), "info")
            return redirect(url_for("customers.customer_detail", customer_id=target.id))
    rows: list[queries.CustomerRow] = []
    found = queries.search_condition(query, _region(), _dialect()) if query else None
    if found is not None:
        where = queries.visible_customers(account, db()) & found
        ids = list(db().scalars(select(Customer.id).where(where).order_by(Customer.id).limit(20)))
        rows = queries.customer_rows(db(), ids, account)
    current = db().get(Customer, lead.customer_id) if lead.customer_id else None
    return render_template(
        "customers/relink.html",
        lead=lead,
        current=current,
        current_name=queries.display_name(current) if current else None,
        rows=rows,
        q=query,
        form=form,
    )


__all__ = ["bp"]
