"""Weeks, days, hours and shares in the user's notation: the page and its PDF show the same."""

from __future__ import annotations

from datetime import date

from babel.dates import format_date
from flask_babel import format_decimal, format_percent, get_locale

WEEK_PATTERNS = {"de": "dd.MM.yy", "en": "d MMM yy"}
DAY_PATTERNS = {"de": "dd.MM.yyyy", "en": "d MMM yyyy"}


def week_label(monday: date) -> str:
    language = str(get_locale() or "de")
    return format_date(monday, WEEK_PATTERNS.get(language, WEEK_PATTERNS["de"]), locale=language)


def day_label(day: date) -> str:
    language = str(get_locale() or "de")
    return format_date(day, DAY_PATTERNS.get(language, DAY_PATTERNS["de"]), locale=language)


def hours(value: float | None) -> str:
    return "–" if value is None else format_decimal(round(value, 1), format="#,##0.0")


def share(value: float | None) -> str:
    return "–" if value is None else format_percent(value, format="#,##0 %")
