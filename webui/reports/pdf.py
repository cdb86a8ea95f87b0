"""Lay a :class:`.document.ReportDocument` out as an A4 PDF with fpdf2.

Text uses fpdf2's core Helvetica, which covers Latin-1 only (German umlauts
and ß are fine): :func:`latin1` maps the few other characters the UI uses
(dashes, typographic quotes, ellipsis, euro sign, arrows) to Latin-1 text in
one place, and anything left becomes ``?`` rather than failing the download.
Why no Unicode TTF: no installed pip package ships one (DejaVu comes with
matplotlib, far too heavy for a font), and the two-command set-up must not
depend on the system's fonts.

Charts are the page's SVG (the flat variant, as fpdf2 draws no fill
patterns), embedded as vector drawings; wide tables are split into parts of
at most :data:`MAX_COLUMNS` number columns, each repeating the row names.
"""

from __future__ import annotations

import io
import re

from fpdf import FPDF
from fpdf.fonts import FontFace

from .document import ReportDocument, Section, Table

MAX_COLUMNS = 9
CHART_WIDTH = 170.0  # mm; A4 portrait leaves 180 between the margins
CHART_MAX_HEIGHT = 200.0
TEXT_MAP = str.maketrans(
    {
        "–": "-",
        "—": "-",
        "‑": "-",
        "−": "-",
        "“": '"',
        "”": '"',
        "„": '"',
        "‘": "'",
        "’": "'",
        "‚": "'",
        "…": "...",
        "€": "EUR",
        "→": "->",
        "←": "<-",
        "•": "·",
        "\u202f": "\xa0",  # narrow no-break space (some locales' number groups)
        "\u2009": " ",
    }
)
SVG_TEXT_ONLY = re.compile(r"<title[^>]*>.*?</title>|<desc[^>]*>.*?</desc>", re.S)
VIEWBOX = re.compile(r'viewBox="0 0 ([\d.]+) ([\d.]+)"')


def latin1(text: str) -> str:
    """``text`` as the core fonts can show it: known characters mapped, the rest ``?``."""
    return text.translate(TEXT_MAP).encode("latin-1", "replace").decode("latin-1")


class _ReportPDF(FPDF):
    page_label = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("helvetica", "", 8)
        self.set_text_color(90)
        self.cell(0, 5, self.page_label.replace("{page}", str(self.page_no())), align="C")
        self.set_text_color(0)


def render(document: ReportDocument) -> bytes:
    """The whole report: title block, then each section with its chart and tables."""
    pdf = _ReportPDF(format="A4")
    pdf.page_label = latin1(document.page_label)
    pdf.set_title(latin1(document.file_title))
    pdf.set_creator("mailgate")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.multi_cell(0, 9, latin1(document.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    for line in document.lines:
        pdf.multi_cell(0, 5, latin1(line), new_x="LMARGIN", new_y="NEXT")
    for section in document.sections:
        _section(pdf, section)
    return bytes(pdf.output())


def _section(pdf: FPDF, section: Section) -> None:
    size = _chart_size(section.chart) if section.chart and not section.empty else (0.0, 30.0)
    if pdf.will_page_break(20 + size[1]) and pdf.get_y() > pdf.t_margin + 1:
        pdf.add_page()  # the heading stays with its chart
    else:
        pdf.ln(5)
    pdf.set_font("helvetica", "B", 13)
    pdf.multi_cell(0, 7, latin1(section.heading), new_x="LMARGIN", new_y="NEXT")
    if section.note:
        pdf.set_font("helvetica", "I", 8)
        pdf.multi_cell(0, 4, latin1(section.note), new_x="LMARGIN", new_y="NEXT")
    if section.empty:
        pdf.set_font("helvetica", "", 10)
        pdf.multi_cell(0, 6, latin1(section.empty), new_x="LMARGIN", new_y="NEXT")
        return
    if section.chart:
        _chart(pdf, section.chart, size)
    for table in section.tables:
        _table(pdf, table)


def _chart_size(svg: str) -> tuple[float, float]:
    """Width and height in mm: as wide as fits, tall bar charts scaled to a page."""
    found = VIEWBOX.search(svg)
    view_w, view_h = (float(found.group(1)), float(found.group(2))) if found else (640.0, 300.0)
    width = CHART_WIDTH
    height = width * view_h / view_w
    if height > CHART_MAX_HEIGHT:
        width, height = width * CHART_MAX_HEIGHT / height, CHART_MAX_HEIGHT
    return width, height


def _chart(pdf: FPDF, svg: str, size: tuple[float, float]) -> None:
    """The SVG as a vector drawing (fpdf2 draws its lines, rects and text as PDF paths)."""
    width, height = size
    if pdf.will_page_break(height + 2):
        pdf.add_page()
    top = pdf.get_y() + 2
    markup = latin1(SVG_TEXT_ONLY.sub("", svg)).encode()  # XML without a declaration: UTF-8
    pdf.image(io.BytesIO(markup), x=pdf.l_margin, y=top, w=width, h=height)
    pdf.set_y(top + height + 2)


def _table(pdf: FPDF, table: Table) -> None:
    """The table in parts of at most MAX_COLUMNS number columns (the row names repeated)."""
    numbers = len(table.header) - 1
    parts = range(0, max(numbers, 1), MAX_COLUMNS)
    for first in parts:
        columns = [0, *range(1 + first, 1 + min(first + MAX_COLUMNS, numbers))]
        if pdf.will_page_break(20):
            pdf.add_page()
        pdf.set_font("helvetica", "B", 9)
        caption = table.caption
        if len(parts) > 1:
            caption += f" ({first // MAX_COLUMNS + 1}/{len(parts)})"
        pdf.multi_cell(0, 6, latin1(caption), new_x="LMARGIN", new_y="NEXT")
        widths = _column_widths(pdf, table, columns)
        count = len(columns) - 1
        with pdf.table(
            width=sum(widths),
            align="LEFT",
            col_widths=widths,
            text_align=("LEFT", *(["RIGHT"] * count)),
            headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
            line_height=4.5,
        ) as grid:
            for values in [table.header, *table.rows]:
                row = grid.row()
                for index in columns:
                    row.cell(latin1(values[index]))
        pdf.ln(3)


def _column_widths(pdf: FPDF, table: Table, columns: list[int]) -> list[float]:
    """Room for each column's longest cell and the longest word of its heading (headings
    wrap between words, never inside one); shrunk to the page if the sum is wider."""
    widths = []
    for index in columns:
        pdf.set_font("helvetica", "B", 8)
        words = latin1(table.header[index]).split() or [""]
        need = max(pdf.get_string_width(word) for word in words)
        pdf.set_font("helvetica", "", 8)
        for row in table.rows:
            need = max(need, pdf.get_string_width(latin1(row[index])))
        widths.append(min(max(need, 8.0), 60.0) + 4)  # 2 mm padding on either side
    total = sum(widths)
    return widths if total <= pdf.epw else [w * pdf.epw / total for w in widths]
