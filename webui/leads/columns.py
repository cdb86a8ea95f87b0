"""The lead list's arrangement: which columns show, how many leads a page holds, the sort
each column header offers, and the active filters as removable chips (seeds 001, 004).

Pure, apart from the labels: the view reads and stores the user's choice
(``User.list_prefs``); anything in it that is not a known column or page size is
ignored, so a stale or hand-edited preference never breaks the list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

# The customer column is always there (it links to the lead); these may be chosen.
COLUMNS: dict[str, Any] = {
    "kind": _l("Kind"),
    "status": _l("Status"),
    "assignee": _l("Assigned to"),
    "source": _l("Source"),
    "vehicle": _l("Vehicle"),
    "phone": _l("Phone"),
    "received": _l("Received"),
    "activity": _l("Last activity"),
    "waiting": _l("Waiting since"),
    "due": _l("Due"),
}
DEFAULT_COLUMNS = (
    "kind",
    "status",
    "assignee",
    "source",
    "vehicle",
    "received",
    "waiting",
    "due",
)
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
# A header that sorts: the column -> the sort it asks for (received toggles its direction).
SORTABLE = {"customer": "customer", "received": "newest", "activity": "activity", "due": "due"}


@dataclass(frozen=True)
class Arrangement:
    columns: tuple[str, ...]
    page_size: int


def arrangement(prefs: Mapping[str, Any] | None) -> Arrangement:
    """The user's stored choice, cleaned; the defaults for what is missing or unknown."""
    prefs = prefs if isinstance(prefs, Mapping) else {}
    chosen = prefs.get("columns")
    columns = DEFAULT_COLUMNS
    if isinstance(chosen, list):
        columns = tuple(name for name in COLUMNS if name in chosen)
    size = prefs.get("page_size")
    page_size = size if isinstance(size, int) and size in PAGE_SIZES else DEFAULT_PAGE_SIZE
    return Arrangement(columns, page_size)


def stored(columns: list[str], page_size: str) -> dict[str, Any]:
    """What a submitted column chooser stores (unknown names and sizes dropped)."""
    size = int(page_size) if page_size.isdigit() and int(page_size) in PAGE_SIZES else None
    return {
        "columns": [name for name in COLUMNS if name in columns],
        "page_size": size or DEFAULT_PAGE_SIZE,
    }


def header_sort(column: str, current: str) -> str | None:
    """The sort a click on ``column``'s header asks for (None: the column does not sort)."""
    wanted = SORTABLE.get(column)
    if wanted == "newest" and current == "newest":
        return "oldest"
    return wanted


def aria_sort(column: str, current: str) -> str | None:
    """``aria-sort`` of a header: which column the list is sorted by, and which way."""
    if column == "received" and current in ("newest", "oldest"):
        return "descending" if current == "newest" else "ascending"
    if SORTABLE.get(column) == current and column != "received":
        return "descending" if current == "activity" else "ascending"
    return None


@dataclass(frozen=True)
class Chip:
    name: str  # the filter's query-string key
    label: str  # e.g. "Status: offen"
    without: dict[str, str]  # the list's arguments without this filter


def chips(
    args: Mapping[str, str], describe: Callable[[str, str], tuple[str, str] | None]
) -> list[Chip]:
    """One chip per active filter (not the sort); ``describe`` names a key and its value."""
    out = []
    for key, value in args.items():
        if key == "sort":
            continue
        named = describe(key, value)
        if named is None:
            continue
        title, shown = named
        out.append(Chip(key, f"{title}: {shown}", {k: v for k, v in args.items() if k != key}))
    return out
