"""A lead's protocol worded in the reader's language.

Service functions store each line as phrases (:mod:`mailgate.protocol`); the
page words them with :func:`webui.phrases.words`, completion reasons by the
admin's current name for them.  Lines written before phrases existed show
their stored English text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from mailgate.models import ProtocolEntry
from mailgate.protocol import phrases_of

from ..phrases import words


@dataclass(frozen=True)
class ProtocolLine:
    at: datetime
    actor: str
    action: str
    text: str


def protocol_lines(
    entries: Iterable[ProtocolEntry], completion_labels: Mapping[str, str]
) -> list[ProtocolLine]:
    """Every protocol entry as the page shows it."""
    names = {"completion": completion_labels}
    lines = []
    for entry in entries:
        phrases = phrases_of(entry.params)
        if phrases is not None:
            text = words(phrases, names)
        elif entry.action == "closed":
            text = completion_labels.get(entry.detail, entry.detail)
        else:
            text = entry.detail
        lines.append(ProtocolLine(entry.at, entry.actor, entry.action, text))
    return lines
