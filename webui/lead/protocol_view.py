"""A lead's protocol worded in the reader's language.

Service functions store each line as phrases (:mod:`mailgate.protocol`); the
page words them with :func:`webui.phrases.words`, completion reasons by the
admin's current name for them.  Lines written before phrases existed show
their stored English text.

The intake line is stored as ``parsed`` with the parser's name, the source
and the kind ("parsed by generic as unknown/inquiry"): right for the log, but
a parser is an internal.  The page words it as where the lead came from and
what it asks for (action "eingegangen": "über mobile.de als Probefahrt"); every row
ever stored carries those values, so old rows read the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from mailgate import protocol as core_protocol
from mailgate.models import ProtocolEntry
from mailgate.protocol import N_, Phrase, phrases_of

from ..phrases import words

RECEIVED = {
    "lead_received_from": N_("via {source} as {kind}"),
    "lead_received_unknown": N_("as {kind}; the source was not recognised"),
}
core_protocol.register(RECEIVED)


@dataclass(frozen=True)
class ProtocolLine:
    at: datetime
    actor: str
    action: str
    text: str


def for_people(phrase: Phrase) -> Phrase:
    """The intake phrase without the parser's name; any other phrase as it is."""
    if phrase.code != "parsed":
        return phrase
    source, kind = phrase.params.get("source"), phrase.params.get("kind")
    if not source or source == "unknown":
        return Phrase("lead_received_unknown", {"kind": kind})
    return Phrase("lead_received_from", {"source": source, "kind": kind})


def protocol_lines(
    entries: Iterable[ProtocolEntry], completion_labels: Mapping[str, str]
) -> list[ProtocolLine]:
    """Every protocol entry as the page shows it."""
    names = {"completion": completion_labels}
    lines = []
    for entry in entries:
        phrases = phrases_of(entry.params)
        if phrases is not None:
            text = words([for_people(p) for p in phrases], names)
        elif entry.action == "closed":
            text = completion_labels.get(entry.detail, entry.detail)
        else:
            text = entry.detail
        lines.append(ProtocolLine(entry.at, entry.actor, entry.action, text))
    return lines
