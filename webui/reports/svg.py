"""Server-rendered SVG charts: pure functions from numbers to markup.

Why hand-built SVG and not a chart library: the content security policy
allows no inline scripts or styles and nothing from the internet, and two
chart types (lines per week, horizontal bars) are a few dozen lines.

Accessibility: every chart is ``role="img"`` with ``aria-labelledby`` pointing
at its ``<title>`` and ``<desc>``; the numbers are also in a table beside it.
Colour is never the only signal: lines differ in dash pattern and marker
shape, bars in fill pattern, and every bar carries its value as text.
Presentation attributes only (``fill=``), no ``style=``: the CSP forbids inline
styles.

``flat=True`` gives the bar charts for the PDF: fpdf2 draws no ``<pattern>``,
so there the bars are solid (even series) or outlined (odd series) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Colour-blind safe (Okabe-Ito), each paired with a dash pattern, a marker and a fill pattern.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4")
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "circle", "square")
PATTERNS = ("solid", "hatch", "dots", "cross", "vertical", "solid", "hatch")
FONT = "sans-serif"


Format = Callable[[float], str]


def plain_number(value: float) -> str:
    """The default label of a value: ``12``, ``6.25`` (callers pass the UI's own notation)."""
    return f"{value:g}"


def axis_steps(top_value: float) -> int:
    """How many gridline intervals up to ``top_value``: five when that gives round steps
    and four does not (25 -> 5, 10, 15 …, not 6.25, 12.5 …), else four."""
    quarter, fifth = top_value / 4, top_value / 5
    if quarter != int(quarter) and (fifth == int(fifth) or fifth * 2 == int(fifth * 2)):
        return 5
    return 4


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _attrs(**values: object) -> str:
    return " ".join(
        f'{k.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for k, v in values.items()
    )


def _text(x: float, y: float, content: str, **extra: object) -> str:
    attrs = _attrs(x=f"{x:.1f}", y=f"{y:.1f}", font_family=FONT, **extra)
    return f"<text {attrs}>{escape(content)}</text>"


def _head(uid: str, width: int, height: int, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{uid}-title {uid}-desc" class="chart">',
        f'<title id="{uid}-title">{escape(title)}</title>',
        f'<desc id="{uid}-desc">{escape(desc)}</desc>',
    ]


def _pattern_defs(uid: str, count: int) -> str:
    """One fill per series: solid, or the colour with white hatching/dots on top."""
    defs = []
    for i in range(count):
        colour, kind = COLOURS[i % len(COLOURS)], PATTERNS[i % len(PATTERNS)]
        pid = f"{uid}-p{i}"
        overlay = {
            "solid": "",
            "hatch": '<path d="M0,8 L8,0" stroke="#fff" stroke-width="2"/>',
            "dots": '<circle cx="4" cy="4" r="1.6" fill="#fff"/>',
            "cross": '<path d="M0,0 L8,8 M8,0 L0,8" stroke="#fff" stroke-width="1.5"/>',
            "vertical": '<path d="M4,0 L4,8" stroke="#fff" stroke-width="2"/>',
        }[kind]
        defs.append(
            f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{colour}"/>{overlay}</pattern>'
        )
    return "<defs>" + "".join(defs) + "</defs>"


def _bar_paint(uid: str, k: int, flat: bool) -> str:
    """A bar's fill and outline: the pattern on the page, solid or outlined in the PDF."""
    colour = COLOURS[k % len(COLOURS)]
    if not flat:
        return f'fill="url(#{uid}-p{k})" stroke="{colour}"'
    if k % 2:
        return f'fill="#ffffff" stroke="{colour}" stroke-width="2"'
    return f'fill="{colour}" stroke="{colour}"'


def _polygon(points: Sequence[tuple[float, float]], colour: str) -> str:
    path = " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<path d="M{path} Z" fill="{colour}"/>'


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}"/>'
    if kind == "triangle":
        return _polygon([(x, y - 4.5), (x + 4.5, y + 3.5), (x - 4.5, y + 3.5)], colour)
    if kind == "diamond":
        return _polygon([(x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)], colour)
    if kind == "cross":
        return (
            f'<path d="M{x - 4:.1f},{y - 4:.1f} L{x + 4:.1f},{y + 4:.1f} M{x + 4:.1f},{y - 4:.1f} '
            f'L{x - 4:.1f},{y + 4:.1f}" stroke="{colour}" stroke-width="2"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


def nice_max(value: float) -> float:
    """A round upper end for an axis (1, 2, 5 × 10^n) at or above ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def line_chart(
    uid: str,
    title: str,
    desc: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    width: int = 640,
    height: int = 300,
    fmt: Format = plain_number,
) -> Markup:
    """Lines over the weeks: one per series, each with its own dash and marker, legend below."""
    left, right, top = 44, 12, 26
    legend_rows = (len(series) + 2) // 3
    bottom = 40 + 18 * legend_rows
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_max(max((v or 0 for s in series for v in s.values), default=0))
    n = max(len(x_labels), 1)
    step = plot_w / max(n - 1, 1)

    def px(i: int) -> float:
        return left + (i * step if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return top + plot_h - (v / top_value) * plot_h

    out = _head(uid, width, height, title, desc)
    out += _y_axis(left, top, plot_w, plot_h, top_value, y_label, fmt)
    label_every = max(1, (n + 7) // 8)
    for i, text in enumerate(x_labels):
        if i % label_every == 0:
            out.append(_text(px(i), top + plot_h + 16, text, font_size=11, text_anchor="middle"))
    for k, s in enumerate(series):
        colour, dash = COLOURS[k % len(COLOURS)], DASHES[k % len(DASHES)]
        points = [(px(i), py(v)) for i, v in enumerate(s.values) if v is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        # the chart is one image (role="img", its words in title/desc and the table below):
        # ARIA on its parts is prohibited, so a series is named for tests and styles only
        out.append(f'<g class="series" data-series="{escape(s.name)}">')
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>'
        )
        out += [_marker(MARKERS[k % len(MARKERS)], x, y, colour) for x, y in points]
        out.append("</g>")
    out += _legend(series, left, height - 18 * legend_rows - 4, plot_w, line=True)
    out.append("</svg>")
    return Markup("\n".join(out))  # noqa: S704  # nosec B704  # all text went through escape()


def bar_chart(
    uid: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Format = plain_number,
    width: int = 640,
    flat: bool = False,
) -> Markup:
    """Horizontal grouped bars: one group per category, each bar labelled with its value."""
    label_w, right, top, bar_h, gap = 150, 60, 10, 16, 10
    legend_rows = (len(series) + 2) // 3
    group_h = bar_h * len(series) + gap
    plot_w = width - label_w - right
    height = top + group_h * max(len(categories), 1) + 30 + 18 * legend_rows
    top_value = nice_max(max((v or 0 for s in series for v in s.values), default=0))
    out = _head(uid, width, height, title, desc)
    if not flat:
        out.append(_pattern_defs(uid, len(series)))
    out.append(
        f'<line x1="{label_w}" y1="{top}" x2="{label_w}" y2="{top + group_h * len(categories)}" '
        'stroke="#555"/>'
    )
    for c, name in enumerate(categories):
        y0 = top + c * group_h
        short = name if len(name) <= 22 else name[:21] + "…"
        out.append(_text(label_w - 6, y0 + group_h / 2, short, font_size=12, text_anchor="end"))
        for k, s in enumerate(series):
            value = s.values[c]
            y = y0 + k * bar_h
            if value is None:
                out.append(_text(label_w + 4, y + bar_h - 4, "–", font_size=11))
                continue
            w = plot_w * value / top_value
            if w > 0 or not flat:  # fpdf2 turns an empty rect into a stray paint operator
                out.append(
                    f'<rect x="{label_w}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 2}" '
                    f"{_bar_paint(uid, k, flat)}>"
                    f"<title>{escape(f'{name} · {s.name}: {fmt(value)}')}</title></rect>"
                )
            out.append(_text(label_w + w + 4, y + bar_h - 5, fmt(value), font_size=11))
    legend_y = height - 18 * legend_rows - 4
    out += _legend(series, label_w, legend_y, plot_w, line=False, uid=uid, flat=flat)
    out.append("</svg>")
    return Markup("\n".join(out))  # noqa: S704  # nosec B704  # all text went through escape()


def _y_axis(
    left: int, top: int, plot_w: int, plot_h: int, top_value: float, y_label: str, fmt: Format
) -> list[str]:
    out = []
    steps = axis_steps(top_value)
    for i in range(steps + 1):
        value = top_value * i / steps
        y = top + plot_h - plot_h * i / steps
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="{"#555" if i == 0 else "#ddd"}"/>'
        )
        out.append(_text(left - 6, y + 4, fmt(value), font_size=11, text_anchor="end"))
    if y_label:
        out.append(_text(4, 12, y_label, font_size=11))
    return out


def _legend(
    series: Sequence[Series],
    x0: int,
    y0: float,
    width: int,
    *,
    line: bool,
    uid: str = "",
    flat: bool = False,
) -> list[str]:
    out, col_w = [], width / 3
    for k, s in enumerate(series):
        x, y = x0 + (k % 3) * col_w, y0 + (k // 3) * 18
        colour = COLOURS[k % len(COLOURS)]
        if line:
            dash = DASHES[k % len(DASHES)]
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<line x1="{x:.1f}" y1="{y + 6:.1f}" x2="{x + 24:.1f}" y2="{y + 6:.1f}" '
                f'stroke="{colour}" stroke-width="2"{dash_attr}/>'
            )
            out.append(_marker(MARKERS[k % len(MARKERS)], x + 12, y + 6, colour))
        else:
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="24" height="12" {_bar_paint(uid, k, flat)}/>'
            )
        label = s.name if len(s.name) <= 24 else s.name[:23] + "…"
        out.append(_text(x + 30, y + 10, label, font_size=11))
    return out
