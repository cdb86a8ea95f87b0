"""Country and region choices for the holiday picker (the ``holidays`` package's lists).

Country names come from Babel's CLDR data in the user's language; region names
from the ``holidays`` package (its aliases), falling back to the code.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Any

import holidays as holiday_data
from babel import Locale
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from mailgate.escalation.calendar import WorkingCalendar


@cache
def _supported() -> dict[str, list[str]]:
    return {
        code: list(subdivisions)
        for code, subdivisions in holiday_data.list_supported_countries().items()
        if len(code) == 2
    }


def countries(language: str) -> list[tuple[str, str]]:
    """(code, "name (code)") of every country with a holiday list, sorted by name."""
    names = Locale.parse(language).territories
    return sorted(
        ((code, f"{names.get(code, code)} ({code})") for code in _supported()),
        key=lambda pair: pair[1],
    )


@cache
def subdivisions(country: str) -> list[tuple[str, str]]:
    """(code, "name (code)") of the country's regions; empty for an unknown country."""
    codes = _supported().get(country.upper(), [])
    if not codes:
        return []
    try:
        aliases = holiday_data.country_holidays(country.upper()).subdivisions_aliases
    except (NotImplementedError, KeyError, ValueError, AttributeError):
        aliases = {}
    names: dict[str, str] = {}
    for name, code in aliases.items():
        names.setdefault(code, name)
    return [(code, f"{names[code]} ({code})" if code in names else code) for code in codes]


def categories(country: str) -> tuple[str, ...]:
    """The holiday categories the package knows for the country (public, catholic, ...)."""
    try:
        return tuple(holiday_data.country_holidays(country.upper()).supported_categories)
    except (NotImplementedError, KeyError, ValueError):
        return ("public",)


# The holidays package's category codes, said in words (the checklist on the holidays page).
CATEGORY_NAMES: dict[str, LazyString] = {
    "public": _l("Public holidays"),
    "catholic": _l("Catholic holidays"),
    "protestant": _l("Protestant holidays"),
    "christian": _l("Christian holidays"),
    "orthodox": _l("Orthodox holidays"),
    "islamic": _l("Islamic holidays"),
    "hebrew": _l("Jewish holidays"),
    "hindu": _l("Hindu holidays"),
    "school": _l("School holidays"),
    "bank": _l("Bank holidays"),
    "government": _l("Public service holidays"),
    "half_day": _l("Half-day holidays"),
    "optional": _l("Optional holidays"),
    "armed_forces": _l("Armed forces holidays"),
    "unofficial": _l("Unofficial holidays"),
    "workday": _l("Commemoration days (working days)"),
    "de_facto": _l("De facto holidays"),
}


def category_choices(country: str) -> list[tuple[str, str]]:
    """(code, name in words) of the country's holiday categories, public holidays first."""
    codes = sorted(categories(country) if country else (), key=lambda c: (c != "public", c))
    return [(code, str(CATEGORY_NAMES.get(code, code.replace("_", " ")))) for code in codes]


def _holiday_language(country: str, language: str) -> str | None:
    """The package's closest language for holiday names (``de``, ``en_US``), or its default."""
    try:
        supported = holiday_data.country_holidays(country).supported_languages
    except (NotImplementedError, KeyError, ValueError, AttributeError):
        return None
    exact = [code for code in supported if code == language]
    close = [code for code in supported if code.split("_")[0] == language]
    return (exact or close or [None])[0]


def days_off(document: dict[str, Any], year: int, language: str) -> list[tuple[date, str, bool]]:
    """(day, reason, is_closure) for every holiday and closure day of ``year``.

    The clock is the same :class:`WorkingCalendar` the escalation uses (so an
    unknown region fails here too); the holiday names are asked again in the
    user's language, which the clock does not need.
    """
    hours, cal = document["hours"], document["holidays"]
    week = hours if any(hours.values()) else {"mon": ["00:00-24:00"]}
    country = cal["country"].upper() or None
    calendar = WorkingCalendar.from_settings(
        week,
        timezone=document["dealer"]["timezone"],
        country=country,
        subdivision=cal["subdivision"] or None,
        categories=cal["categories"],
        closures=cal["closures"],
    )
    names: dict[date, str] = {}
    if country:
        named = holiday_data.country_holidays(
            country,
            subdiv=cal["subdivision"] or None,
            categories=tuple(cal["categories"]) or ("public",),
            years=year,
            language=_holiday_language(country, language),
        )
        names = {day: str(name) for day, name in named.items()}
    day, end, result = date(year, 1, 1), date(year, 12, 31), []
    while day <= end:
        reason = calendar.closed_reason(day)
        if reason is not None:
            closure = day in calendar.closed
            result.append((day, reason if closure else names.get(day, reason), closure))
        day += timedelta(days=1)
    return result
