"""The lead list (home page): filter, search, sort, pages, bulk reassign and CSV export.

Every query is the user's lead scope AND the filter's conditions, so a URL or
a form field can narrow but never widen what a user sees; the bulk action
checks the scope of every selected lead again on the server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from mailgate.distribution.actions import ActionError, delete_leads, reassign
from mailgate.models import Customer, Lead, User, utcnow

from ..access import admin_required, lead_scope, me
from ..choices import options
from ..context import db, dealer
from ..i18n import local_date
from ..input_limits import DB_INT_MAX
from ..labels import category_choices, label
from ..paging import Page
from .columns import COLUMNS, PAGE_SIZES, aria_sort, arrangement, chips, header_sort, stored
from .due import LABELS as DUE_LABELS
from .due import STATES as DUE_STATES
from .errors import explain
from .filters import FIELD_NAMES, KINDS, STATUSES, Filters, parse
from .forms import BulkDeleteForm, BulkReassignForm, ListViewForm
from .people import display_name, may_reassign, reassign_targets, visible_users
from .query import conditions, order_by
from .rows import Row, RowFormatter

bp = Blueprint("leads", __name__)


def lead_where(filters: Filters, now: datetime) -> ColumnElement[bool]:
    """The user's lead scope AND the filter: what the list, its count, live parts and CSV show."""
    doc = dealer().document
    region = doc["dealer"].get("country") or "DE"
    dialect = db().get_bind().dialect.name
    found = conditions(filters, now=now, zone=dealer().timezone, region=region, dialect=dialect)
    return and_(lead_scope(me()), *found)


COUNT_CAP = 10_000  # beyond this the list says "10,000+": narrowing beats paging


def count_capped(where: ColumnElement[bool]) -> int:
    """The number of matching leads, counted up to :data:`COUNT_CAP` + 1 only.

    A full count at 100,000 leads reads every index entry on each page view;
    nobody pages past 200 pages, so the count stops where it stops mattering.
    """
    capped = select(Lead.id).where(where).limit(COUNT_CAP + 1).subquery()
    return db().scalar(select(func.count()).select_from(capped)) or 0


def _ordered(query: Select[tuple[int]], filters: Filters) -> Select[tuple[int]]:
    if filters.sort == "customer":
        query = query.outerjoin(Customer, Customer.id == Lead.customer_id)
    return query.order_by(*order_by(filters.sort))


def _back_args() -> dict[str, str]:
    """The list's query string from the bulk form's hidden field (only known keys)."""
    from urllib.parse import parse_qsl

    raw = request.form.get("back", "")
    return {k: v for k, v in parse_qsl(raw) if k in (*FIELD_NAMES, "page")}


@dataclass(frozen=True)
class Table:
    """One page of the list as the table shows it, and the newest lead the filter finds."""

    items: list[Row]
    page: Page
    total: int
    columns: tuple[str, ...]
    newest: int  # the highest lead id in scope and filter: the live notice counts above it


def table(filters: Filters) -> Table:
    """The current page of leads in the user's scope and filter (list and its live refresh)."""
    now = utcnow()
    where = lead_where(filters, now)
    total = count_capped(where)
    user = db().get(User, me().id)
    arranged = arrangement(user.list_prefs if user is not None else None)
    page = Page.from_request(total, size=arranged.page_size)
    # ids first (from the covering index, no wide rows touched), then those 50 leads
    ids = (
        db()
        .scalars(
            _ordered(select(Lead.id).where(where), filters).offset(page.offset).limit(page.size)
        )
        .all()
    )
    found = {
        lead.id: lead
        for lead in db().scalars(
            select(Lead)
            .where(Lead.id.in_(ids))
            .options(selectinload(Lead.customer), selectinload(Lead.assignee))
        )
    }
    leads = [found[i] for i in ids if i in found]
    formatter = RowFormatter(dealer().timezone, now)
    unnamed = _("Lead %(id)s")  # no variables: the template, filled per row
    newest = db().scalar(select(func.max(Lead.id)).where(where)) or 0
    items = [formatter.row(lead, unnamed) for lead in leads]
    return Table(items, page, total, arranged.columns, newest)


def table_context(filters: Filters, shown: Table) -> dict[str, object]:
    """What the table and its live parts (count, pager, notice) need to render."""
    return {
        "items": shown.items,
        "page": shown.page,
        "filters": filters,
        "args": filters.args(),
        "columns": shown.columns,
        "column_labels": {name: str(text) for name, text in COLUMNS.items()},
        "header_sort": header_sort,
        "aria_sort": aria_sort,
        "selectable": may_reassign(me()),
        "capped": shown.total > COUNT_CAP,
        "cap": format_decimal(COUNT_CAP),
        "total": format_decimal(shown.total),
        "newest": shown.newest,
    }


@bp.route("/leads")
@login_required
def lead_list() -> str:
    filters = parse(request.args)
    account = me()
    shown = table(filters)
    form = None
    if may_reassign(account):
        form = BulkReassignForm()
        form.target.choices = options(
            (u.id, display_name(u)) for u in reassign_targets(db(), account)
        )
        form.back.data = request.query_string.decode("ascii", "replace")
    view_form = ListViewForm(
        formdata=None, columns=list(shown.columns), page_size=str(shown.page.size)
    )
    view_form.back.data = request.query_string.decode("ascii", "replace")
    args = filters.args()
    return render_template(
        "leads/list.html",
        form=form,
        delete_form=BulkDeleteForm() if account.is_admin and form is not None else None,
        view_form=view_form,
        page_sizes=PAGE_SIZES,
        chips=chips(args, _describe_filter),
        choices=_choices(),
        statuses=STATUSES,
        kinds=KINDS,
        due_states=DUE_STATES,
        **table_context(filters, shown),
    )


SOURCES_TTL = 60.0  # seconds; a new source shows up in the filter within a minute


def _distinct(column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None]) -> list[str]:
    """The distinct values of an indexed lead column (sources, campaigns) in the leads the user
    may see.  An admin sees all leads: that list is cached per process (a full index scan at
    100,000 leads); anyone else gets the values of their own scope, never a colleague's."""
    account = me()
    if not account.is_admin:
        found = db().scalars(
            select(column)
            .where(lead_scope(account), column.is_not(None))
            .distinct()
            .order_by(column)
        )
        return [v for v in found if v]
    key = f"lead_{column.key}_values"
    at, values = current_app.extensions["mailgate"].setdefault(key, (0.0, []))
    if not at or time.monotonic() - at > SOURCES_TTL:
        found = db().scalars(select(column).where(column.is_not(None)).distinct().order_by(column))
        values = [v for v in found if v]
        current_app.extensions["mailgate"][key] = (time.monotonic(), values)
    return list(values)


def _choices() -> dict[str, list[tuple[str, str]]]:
    """Options of the filter's select boxes (sources and locations as they occur)."""
    session = db()
    doc = dealer().document
    locations = set(doc["distribution"].get("locations", {}))
    for user in doc.get("users", []):
        locations.update(user.get("locations") or ())
    users = [(str(u.id), display_name(u)) for u in visible_users(session, me())]
    return {
        "sources": [(s, str(label(s, "source"))) for s in _distinct(Lead.source)],
        "campaigns": [(c, c) for c in _distinct(Lead.campaign)],
        "channels": category_choices(),
        "locations": [(loc, loc) for loc in sorted(locations)],
        "assignees": users,
    }


FILTER_TITLES = {
    "q": _l("Search"),
    "status": _l("Status"),
    "due": _l("Due state"),
    "target": _l("Processing target"),
    "callcentre": _l("Call centre"),
    "kind": _l("Kind"),
    "source": _l("Source"),
    "campaign": _l("Campaign"),
    "channel": _l("Channel"),
    "assignee": _l("Assigned to"),
    "location": _l("Location"),
    "date_from": _l("Received from"),
    "date_to": _l("Received until"),
    "review": _l("Needs review only"),
    # the supervisor overview's links (webui/dashboard)
    "due_today": _l("Due today"),
    "answered": _l("Answered"),
    "escalated": _l("Escalated on"),
    "escalation": _l("Escalation"),
}


def _describe_filter(key: str, value: str) -> tuple[str, str] | None:
    """A chip's words for one active filter: its title and the value as the user chose it."""
    title = FILTER_TITLES.get(key)
    if title is None:
        return None
    shown = value
    if key == "status":
        shown = _("open") if value == "open" else str(label(value, "lead_status"))
    elif key == "due":
        shown = str(DUE_LABELS.get(value, value))
    elif key in ("kind", "source"):
        shown = str(label(value, key))
    elif key == "channel":
        shown = str(label(value, "category"))
    elif key == "assignee":
        names = dict(_choices()["assignees"])
        shown = _("nobody (unassigned)") if value == "none" else names.get(value, value)
    elif key in ("target", "callcentre"):
        shown = str(CHIP_VALUES.get(value, value))
    elif key in ("date_from", "date_to"):
        shown = local_date(date.fromisoformat(value))
    elif key in ("review", "due_today"):
        shown = _("yes")
    elif key == "escalated":
        shown = local_date(date.fromisoformat(value))
    elif key in ("answered", "escalation"):
        shown = str(CHIP_VALUES.get(value, value))
    return str(title), shown


CHIP_VALUES = {
    "set": _l("target set"),
    "missed": _l("target missed, still open"),
    "taken": _l("taken over by the call centre"),
    "returned": _l("handed back from the call centre"),
    "yes": _l("yes"),
    "no": _l("no"),
    "stage1": _l("stage 1, to the salesperson"),
    "stage2": _l("stage 2, to the supervisor"),
}


@bp.route("/leads/view", methods=["POST"])
@login_required
def list_view() -> ResponseReturnValue:
    """Store the user's columns and page size; back to the list as it was."""
    form = ListViewForm()
    back = url_for("leads.lead_list", **_back_args())
    if not form.validate_on_submit():
        abort(400)
    user = db().get(User, me().id)
    if user is None:
        abort(404)
    user.list_prefs = stored(list(form.columns.data or []), form.page_size.data or "")
    db().commit()
    flash(_("The list now shows your choice of columns."), "info")
    return redirect(back)


@bp.route("/leads/delete", methods=["POST"])
@admin_required
def bulk_delete() -> ResponseReturnValue:
    """Admins delete several open leads at once (all or nothing; history kept)."""
    form = BulkDeleteForm()
    back = url_for("leads.lead_list", **_back_args())
    if not form.validate_on_submit():
        flash(_("Select the leads and tick the box to confirm the deletion."), "error")
        return redirect(back)
    ids = list(dict.fromkeys(form.lead_ids.data or []))
    if not ids:
        flash(_("No lead selected."), "error")
        return redirect(back)
    if not all(0 < i <= DB_INT_MAX for i in ids):
        abort(404)  # no lead has such an id (and the database could not even look)
    try:
        delete_leads(db(), dealer(), ids, actor=me().email, now=utcnow())
    except ActionError as exc:
        db().rollback()
        flash(explain(exc), "error")
        return redirect(back)
    db().commit()
    flash(ngettext("%(num)s lead deleted.", "%(num)s leads deleted.", len(ids)), "info")
    return redirect(back)


@bp.route("/leads/reassign", methods=["POST"])
@login_required
def bulk_reassign() -> ResponseReturnValue:
    account = me()
    if not may_reassign(account):
        abort(403)
    form = BulkReassignForm()
    targets = {u.id: u for u in reassign_targets(db(), account)}
    form.target.choices = options((uid, display_name(u)) for uid, u in targets.items())
    back = url_for("leads.lead_list", **_back_args())
    if not form.validate_on_submit():
        flash(_("Choose the leads and the user to reassign them to."), "error")
        return redirect(back)
    ids = list(dict.fromkeys(form.lead_ids.data or []))
    if not ids:
        flash(_("No lead selected."), "error")
        return redirect(back)
    visible = db().scalar(
        select(func.count()).select_from(Lead).where(Lead.id.in_(ids), lead_scope(account))
    )
    if visible != len(ids):
        abort(404)  # a lead outside the scope: as if it did not exist
    target = targets[form.target.data]
    try:
        reassign(db(), dealer(), ids, target.email, actor=account.email, note=form.note.data or "")
    except ActionError as exc:
        db().rollback()
        flash(explain(exc), "error")
        return redirect(back)
    db().commit()
    if len(ids) == 1:
        done = _("1 lead reassigned to %(name)s.", name=display_name(target))
    else:
        done = _(
            "%(count)s leads reassigned to %(name)s.", count=len(ids), name=display_name(target)
        )
    flash(done, "info")
    return redirect(back)


EXPORT_LIMIT = 200_000


@bp.route("/leads/export.csv")
@login_required
def export_csv() -> Response:
    from .export import export_rows, header

    filters = parse(request.args)
    now = utcnow()
    where = lead_where(filters, now)
    query = _ordered(select(Lead.id).where(where), filters).limit(EXPORT_LIMIT)
    stamp = now.astimezone(dealer().timezone).strftime("%Y-%m-%d")
    from .csvexport import csv_lines

    body = csv_lines(header(), export_rows(db(), query, now, dealer().timezone))
    return Response(
        stream_with_context(body),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="leads-{stamp}.csv"',
        },
    )


__all__ = ["bp"]
