"""A lead's protocol worded in the reader's language.

Service functions store each line as phrases (:mod:`mailgate.protocol`); here
they are translated with the web UI's catalogs (the English wording is the
msgid), with times in the dealer's zone, dates and codes in the user's words.
Lines written before phrases existed show their stored English text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from babel.dates import format_date
from flask_babel import get_locale, gettext

from mailgate.models import ProtocolEntry
from mailgate.protocol import phrases_of, render_all

from ..i18n import DATE_PATTERNS, DEFAULT_LANGUAGE, local_time
from ..labels import label

# parameter name -> label kind of webui.labels.LABELS whose words show the stored code
LABELLED = {
    "kind": "kind",
    "qualification": "qualification",
    "status": "lead_status",
    "channel": "contact_channel",
    "purpose": "mail_purpose",
    "how": "match_how",
    "field": "edit_field",
    "category": "category",
}


@dataclass(frozen=True)
class ProtocolLine:
    at: datetime
    actor: str
    action: str
    text: str


def protocol_lines(
    entries: Iterable[ProtocolEntry], completion_labels: Mapping[str, str]
) -> list[ProtocolLine]:
    """Every protocol entry as the page shows it (completion reasons by their current name)."""
    value = _value_formatter(completion_labels)
    lines = []
    for entry in entries:
        phrases = phrases_of(entry.params)
        if phrases is not None:
            text = render_all(phrases, gettext, value)
        elif entry.action == "closed":
            text = completion_labels.get(entry.detail, entry.detail)
        else:
            text = entry.detail
        lines.append(ProtocolLine(entry.at, entry.actor, entry.action, text))
    return lines


def _value_formatter(completion_labels: Mapping[str, str]):  # type: ignore[no-untyped-def]
    language = str(get_locale() or DEFAULT_LANGUAGE)

    def value(key: str, raw: Any) -> str:
        if raw is None or raw == "":
            return "–"
        if key == "completion":
            return str(completion_labels.get(raw, raw))
        if key in LABELLED:
            return label(str(raw), LABELLED[key])
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
