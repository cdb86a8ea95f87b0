"""What a routing or escalation rule can match, as labelled choices instead of glob patterns.

Groups (``[[groups]] match``) and escalation rules (``escalation.rules[].match``) store
lists of glob patterns per lead property.  The pages offer the real values — sources
by display name (:mod:`mailgate.labels`), kinds in German, makes from the parsers'
catalogue, the configured locations, the lead categories — and :func:`split_patterns`
/ :func:`join_patterns` move between the stored list and "picked choices + an expert
pattern text", so a stored pattern the lists do not know is never lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _

from mailgate import labels as core_labels
from mailgate.parsers import normalize, oem_brands
from mailgate.parsers.model import KINDS, SOURCES

from ..labels import category_choices
from .rows import split_list

# OEM lead systems with a parser of their own (besides parsers/oem_brands.py's BRANDS)
_OEM_PARSERS = ("audi", "hyundai", "mercedes-benz", "nissan", "opel", "volkswagen")
ALL_OEM = "oem:*"


def _language() -> str:
    return str(get_locale() or "de")


def source_choices() -> list[tuple[str, str]]:
    """Platforms first, then "every manufacturer", then each manufacturer by name."""
    language = _language()
    platforms = [(code, core_labels.source_label(code, language)) for code in SOURCES]
    slugs = sorted({slug for slug, _make in oem_brands.BRANDS.values()} | set(_OEM_PARSERS))
    makers = sorted(
        ((f"oem:{slug}", core_labels.source_label(f"oem:{slug}", language)) for slug in slugs),
        key=lambda pair: pair[1].lower(),
    )
    return [*platforms, (ALL_OEM, _("Every manufacturer system")), *makers]


def kind_choices() -> list[tuple[str, str]]:
    return [(code, core_labels.kind_label(code, _language())) for code in KINDS]


def make_choices() -> list[tuple[str, str]]:
    """The makes the parsers recognise, by their canonical name (what a lead stores)."""
    names = sorted(set(normalize._MAKES.values()), key=str.lower)  # the parsers' one list
    return [(name, name) for name in names]


def location_choices(locations: Iterable[str]) -> list[tuple[str, str]]:
    return [(name, name) for name in locations]


def choices_for(key: str, document: dict[str, Any]) -> list[tuple[str, str]]:
    """The labelled choices of one match key (source, kind, make, location, category)."""
    if key == "source":
        return source_choices()
    if key == "kind":
        return kind_choices()
    if key == "make":
        return make_choices()
    if key == "location":
        return location_choices(document["distribution"]["locations"])
    if key == "category":
        return category_choices()
    return []


def split_patterns(
    patterns: Sequence[str], choices: Sequence[tuple[str, str]]
) -> tuple[list[str], str]:
    """Stored patterns -> (the ones offered as choices, the rest as expert text)."""
    offered = {value.lower(): value for value, _label in choices}
    picked = [offered[p.lower()] for p in patterns if p.lower() in offered]
    rest = [p for p in patterns if p.lower() not in offered]
    return picked, ", ".join(rest)


def join_patterns(picked: Iterable[str], expert: str) -> list[str]:
    """Picked choices + expert patterns, each once (compared without case, as matching is).

    A posted value that is no offered choice is kept like an expert pattern: the
    expert field accepts any pattern anyway, and older forms posted text here.
    """
    result: list[str] = []
    for value in [*(part for text in picked for part in split_list(text)), *split_list(expert)]:
        if value.lower() not in {r.lower() for r in result}:
            result.append(value)
    return result
