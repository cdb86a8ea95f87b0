"""Phrases (:mod:`mailgate.protocol`) worded in the user's language.

The core writes facts as phrase codes with values (protocol lines, settings
warnings); the English wording is the msgid, translated by the catalog of the
area that shows them.  Values are shown the way the UI shows them elsewhere:
times in the dealer's zone, dates in the user's notation, stored codes by
their labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from babel.dates import format_date
from flask_babel import get_locale, gettext

from mailgate.protocol import Phrase, render_all

from .i18n import DATE_PATTERNS, DEFAULT_LANGUAGE, local_time
from .labels import label

# parameter name -> label kind (webui.labels.LABELS) whose words show the stored code
LABELLED = {
    "kind": "kind",
    "source": "source",  # "mobile.de", "Hersteller: Opel", "Unbekannt": never the code
    "qualification": "qualification",
    "status": "lead_status",
    "previous_status": "lead_status",
    "channel": "contact_channel",
    "purpose": "mail_purpose",
    "how": "match_how",
    "field": "edit_field",
    "category": "category",
}


def words(phrases: Iterable[Phrase], names: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """``phrases`` in the user's language; ``names`` words further parameters by value
    (e.g. ``{"completion": {code: the admin's name for it}}``)."""
    return render_all(phrases, gettext, value_formatter(names or {}))


def value_formatter(names: Mapping[str, Mapping[str, str]]) -> Callable[[str, Any], str]:
    language = str(get_locale() or DEFAULT_LANGUAGE)

    def value(key: str, raw: Any) -> str:
        if raw is None or raw == "":
            return "–"
        if key in names:
            return str(names[key].get(raw, raw))
        if key in LABELLED:
            return label(str(raw), LABELLED[key])
        if key == "fields":  # a list of field names, as one text ("street, phone")
            return ", ".join(label(name, "edit_field") for name in str(raw).split(", "))
        if isinstance(raw, str) and key.endswith("_at"):
            try:
                return local_time(datetime.fromisoformat(raw))
            except ValueError:
                return raw  # a line converted from old English text: already local
        if isinstance(raw, str) and key.endswith("_on"):
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                return raw
            pattern = DATE_PATTERNS.get(language, DATE_PATTERNS[DEFAULT_LANGUAGE])
            return format_date(day, pattern, locale=language)
        return str(raw)

    return value
