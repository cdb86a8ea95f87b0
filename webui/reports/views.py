"""The reports page (charts beside their tables) and its CSV export."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from mailgate.csv_safe import csv_text
from mailgate.models import Lead, utcnow

from ..access import lead_scope, me, pool_user_id
from ..choices import options
from ..context import db, dealer
from ..i18n import local_time
from ..labels import LABELS, category_choices, label
from . import charts
from .data import Report, build_report
from .formatting import day_label, hours, share, week_label
from .forms import RangeForm
from .stats import LADDER_RUNGS, column_totals

bp = Blueprint("reports", __name__)
TABLES = ("sources", "kinds", "response", "ladder", "outcomes")
KINDS = LABELS["kind"]  # the lead kinds (inquiry, test drive, ...) with their labels


NARROWING_COLUMNS = {
    "source": Lead.source,
    "campaign": Lead.campaign,
    "channel": Lead.category,
    "type": Lead.kind,
    "location": Lead.location,
}


def _offer_options(form: RangeForm, session: Session, scope: ColumnElement[bool]) -> None:
    """The narrowing choices: values as they occur in the leads the user may see (a source
    only in a colleague's leads is not offered; channels: the dealer's categories and the built-in
    three; types: the six kinds)."""
    everything = [("", _("all"))]
    form.channel.choices = options([*everything, *category_choices()])
    form.type.choices = options([*everything, *((k, str(text)) for k, text in KINDS.items())])
    for name in ("source", "campaign", "location"):
        column = NARROWING_COLUMNS[name]
        found = session.scalars(
            select(column).where(scope, column.is_not(None)).distinct().order_by(column).limit(200)
        )
        shown = charts.source_name if name == "source" else str
        getattr(form, name).choices = options([*everything, *((v, shown(v)) for v in found if v)])


def _report() -> tuple[RangeForm, Report]:
    form = RangeForm(request.args)
    session = db()
    visible = lead_scope(me(), session)
    _offer_options(form, session, visible)
    today = utcnow().astimezone(dealer().timezone).date()
    start, end = form.chosen(today)
    form.start.data, form.end.data = start, end  # the picker shows the range in use
    narrowing = form.narrowing()
    for name in form.NARROWING:  # an unknown value shows as "all", as it is ignored
        getattr(form, name).data = narrowing.get(name, "")
    scope = and_(
        visible,
        *(NARROWING_COLUMNS[name] == value for name, value in narrowing.items()),
    )
    pool = pool_user_id(session)
    report = build_report(
        session,
        dealer(),
        scope,
        start,
        end,
        utcnow(),
        {pool} if pool is not None else set(),
    )
    return form, report


@bp.route("/reports")
@login_required
def index() -> str:
    form, report = _report()
    weeks = [week_label(w) for w in report.weeks]
    return render_template(
        "reports/index.html",
        form=form,
        report=report,
        weeks=weeks,
        charts=charts.all_charts(report, weeks),
        hours=hours,
        share=share,
        day_label=day_label,
        tables=TABLES,
        args={
            "start": report.start.isoformat(),
            "end": report.end.isoformat(),
            **form.narrowing(),
        },
        rungs=LADDER_RUNGS,
        rung_label=charts.rung_label,
        source_name=charts.source_name,
        ladder_totals=column_totals(report.ladder),
    )


@bp.route("/reports.csv")
@login_required
def export() -> Response:
    """One table as CSV for German Excel: ``;``, UTF-8 with BOM, decimal comma; source and
    salesperson names are defused like every export's cells (:mod:`mailgate.csv_safe`)."""
    table = request.args.get("table", "")
    if table not in TABLES:
        abort(404)
    _form, report = _report()
    body = csv_text(_rows(table, report))
    name = f"mailgate-{table}-{report.start.isoformat()}-{report.end.isoformat()}.csv"
    return Response(
        body.encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.route("/reports.pdf")
@login_required
def export_pdf() -> Response:
    """The page as an A4 PDF: same range, narrowing and scope; tables, charts, a title."""
    # Imported here: fpdf2 pulls in fontTools and Pillow, about a second at import,
    # which no process should pay before someone asks for a PDF.
    from . import pdf
    from .document import report_document

    form, report = _report()
    account = me()
    document = report_document(
        report,
        form,
        dealer_name=dealer().name,
        user_name=account.name,
        role=account.role,
        generated_at=local_time(utcnow()),
    )
    name = f"mailgate-report-{report.start.isoformat()}-{report.end.isoformat()}.pdf"
    return Response(
        pdf.render(document),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _decimal(value: float | None, digits: int = 1) -> str:
    """German Excel reads ``1,5`` as a number and ``1.5`` as a date or text."""
    return "" if value is None else f"{value:.{digits}f}".replace(".", ",")


def unique_names(names: list[str], codes: list[str]) -> list[str]:
    """Column names as shown, each once: a name two codes share gets its code added
    (a spreadsheet keyed by column name would otherwise merge or drop one)."""
    taken = [_("Week from"), _("Total")]
    out = []
    for name, code in zip(names, codes, strict=True):
        out.append(f"{name} ({code})" if name in taken or names.count(name) > 1 else name)
        taken.append(out[-1])
    return out


def _rows(table: str, report: Report) -> Iterator[list[object]]:
    if table in ("sources", "kinds"):
        series = report.sources if table == "sources" else report.kinds
        codes = list(series)
        if table == "sources":
            names = [charts.source_name(code) for code in codes]
        else:
            names = [str(label(code, "kind")) for code in codes]
        yield [_("Week from"), *unique_names(names, codes), _("Total")]
        for i, monday in enumerate(report.weeks):
            values = [series[key][i] for key in series]
            yield [monday.isoformat(), *values, sum(values)]
        return
    if table == "response":
        yield [
            _("Salesperson"),
            _("Leads"),
            _("Answered"),
            _("Median (working hours)"),
            _("90th percentile (working hours)"),
            _("Answered before stage 1"),
            _("Decided"),
            _("Share before stage 1"),
        ]
        for s in report.responses:
            yield [
                s.person,
                s.leads,
                s.answered,
                _decimal(s.median_hours),
                _decimal(s.p90_hours),
                s.on_time,
                s.due,
                _decimal(None if s.on_time_share is None else 100 * s.on_time_share, 0),
            ]
        return
    if table == "ladder":
        yield [_("Source"), *(charts.rung_label(rung) for rung in LADDER_RUNGS)]
        for source, counts in report.ladder.items():
            yield [charts.source_name(source), *counts]
        yield [_("Total"), *column_totals(report.ladder)]
        return
    yield [_("Source"), _("Won"), _("Lost"), _("Other"), _("Open"), _("Win rate (%)")]
    for source, o in report.outcomes.items():
        rate = None if o.win_rate is None else 100 * o.win_rate
        yield [charts.source_name(source), o.won, o.lost, o.other, o.open, _decimal(rate, 0)]
