"""The report's five charts, from a :class:`.data.Report` (texts in the user's language)."""

from __future__ import annotations

from flask_babel import format_decimal
from flask_babel import gettext as _
from markupsafe import Markup

from ..labels import label
from .data import Report
from .stats import LADDER_RUNGS, column_totals, top_keys
from .svg import Series, bar_chart, line_chart

MAX_LINES = 6


def _hours(value: float) -> str:
    return format_decimal(round(value, 1), format="#,##0.0") + " h"


def count(value: float) -> str:
    """An axis or bar value in the UI's notation (de: ``6,25``, ``1.200``; en: ``6.25``)."""
    return format_decimal(value, format="#,##0.##")


def source_name(code: str) -> str:
    """A source by its display name (``Unbekannt``, ``Hersteller: Nissan``), never the code."""
    return str(label(code, "source"))


OTHERS = "\x00others"  # top_keys' key for the summed rest (no source or kind is called so)


def _legend_source(key: str) -> str:
    return _("others") if key == OTHERS else source_name(key)


def _legend_kind(key: str) -> str:
    return _("others") if key == OTHERS else str(label(key, "kind"))


def rung_label(rung: str) -> str:
    """A ladder rung's column name: the lead statuses' words, plus received and won."""
    if rung == "received":
        return _("received leads")  # its own msgid: "received" is an inbound mail's state too
    if rung == "won":
        return _("won")
    return str(label(rung, "lead_status"))


def all_charts(report: Report, weeks: list[str], *, flat: bool = False) -> dict[str, Markup]:
    """The five charts; ``flat``: bars without fill patterns, for the PDF (fpdf2 has none)."""
    span = _(
        "%(start)s to %(end)s", start=weeks[0] if weeks else "", end=weeks[-1] if weeks else ""
    )
    sources = top_keys(report.sources, MAX_LINES, OTHERS)
    kinds = top_keys(report.kinds, MAX_LINES, OTHERS)
    people = [s.person for s in report.responses]
    outcome_sources = list(report.outcomes)
    return {
        "sources": line_chart(
            "chart-sources",
            _("Leads per source and week"),
            _(
                "Line chart, one line per source, weeks %(span)s; the numbers are in the table.",
                span=span,
            ),
            weeks,
            [Series(_legend_source(name), values) for name, values in sources.items()],
            y_label=_("Leads"),
            fmt=count,
        ),
        "kinds": line_chart(
            "chart-kinds",
            _("Leads per kind and week"),
            _(
                "Line chart, one line per kind of inquiry, weeks %(span)s; the numbers are in "
                "the table.",
                span=span,
            ),
            weeks,
            [Series(_legend_kind(name), values) for name, values in kinds.items()],
            y_label=_("Leads"),
            fmt=count,
        ),
        "response": bar_chart(
            "chart-response",
            _("First response in working hours per salesperson"),
            _(
                "Bar chart: median and 90th percentile of the working time until the first "
                "response, per salesperson; the numbers are in the table."
            ),
            people,
            [
                Series(_("Median"), [s.median_hours for s in report.responses]),
                Series(_("90th percentile"), [s.p90_hours for s in report.responses]),
            ],
            fmt=_hours,
            flat=flat,
        ),
        "ladder": bar_chart(
            "chart-ladder",
            _("Sales ladder"),
            _(
                "Bar chart: how many of the period's leads reached each step, from received "
                "to won; the numbers per source are in the table."
            ),
            [rung_label(rung) for rung in LADDER_RUNGS],
            [Series(_("All sources"), column_totals(report.ladder) or [0] * len(LADDER_RUNGS))],
            fmt=count,
            flat=flat,
        ),
        "outcomes": bar_chart(
            "chart-outcomes",
            _("Won and lost per source"),
            _("Bar chart: closed leads won and lost per source; the numbers are in the table."),
            [source_name(s) for s in outcome_sources],
            [
                Series(_("Won"), [o.won for o in report.outcomes.values()]),
                Series(_("Lost"), [o.lost for o in report.outcomes.values()]),
            ],
            fmt=count,
            flat=flat,
        ),
    }
