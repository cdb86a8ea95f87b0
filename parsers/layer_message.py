"""Layer 2, the message: the customer's words from a labelled message block.

A free-form parser may have taken the whole text, or a form's field lines with
it; a labelled block wins there.  Every message loses the platform's footer
(:mod:`.boilerplate`), and the kind is decided again with the words found.
"""

from __future__ import annotations

import re

from . import reader
from .boilerplate import strip_boilerplate
from .lexicon import field_of
from .merge import FREE_FORM_SOURCES, GENERAL, SOURCE, pair_detail
from .model import Loser, Origin, ParsedLead


def fill_message(lead: ParsedLead, pairs: list[reader.Pair]) -> None:
    blocks = [p for p in pairs if p.key == "message"]
    if lead.message and blocks and lead.source in FREE_FORM_SOURCES:
        best = max(blocks, key=lambda p: len(p.value))
        if _overlap(lead.message, best.value) < 0.5:
            # a free-form parser took the whole (stub) text; a labelled block is the message
            lead.losers.setdefault("message", []).append(
                Loser(SOURCE, lead.parser, lead.message[:80], "a labelled message block wins")
            )
            lead.message = None
    if lead.message and blocks and _holds_fields(lead.message):
        best = max(blocks, key=lambda p: len(p.value))
        if len(best.value) < len(lead.message):
            # the parser took the whole mail (fields and all); the labelled block is the message
            lead.losers.setdefault("message", []).append(
                Loser(SOURCE, lead.parser, lead.message[:80], "it holds the mail's field lines")
            )
            lead.message = None
    if lead.message:
        _cut_field_tail(lead)
        cleaned = strip_boilerplate(lead.message)
        if cleaned != lead.message.strip() and cleaned:
            lead.losers.setdefault("message", []).append(
                Loser(SOURCE, "platform footer", lead.message[len(cleaned) :][:80], "boilerplate")
            )
            lead.message = cleaned
        return
    if not blocks:
        return
    best = max(blocks, key=lambda p: len(p.value))
    message = strip_boilerplate(best.value)
    if message:
        lead.message = message
        lead.provenance["message"] = Origin(GENERAL, pair_detail(best), message[:80])


_WORD = re.compile(r"\w{3,}")


# "Monatliche Rate ab: 499 €": a short label and a value, a field line no lexicon lists
_LABEL_LIKE = re.compile(r"^\s*(?P<label>[^\W\d_][^:\n]{0,40}?)\s*:\s*\S")


def _label_like(line: str) -> bool:
    match = _LABEL_LIKE.match(line)
    if match is None or len(match["label"].split()) > 4:
        return False
    return field_of(match["label"]) != "message"  # "Nachricht: …" is the customer's words


def _cut_field_tail(lead: ParsedLead) -> None:
    """The source parser's message without a trailing block of field lines in any wording.

    A source parser stops its message at the labels it knows ("Preis:"); the same
    mail with another word for the label ("Kaufpreis:", "Anzeigennummer:",
    "Telefon 0178 …") must not glue that field to the customer's words.  Only a
    block at the end is cut, starting at a field whose value proves itself
    (:func:`.reader.shaped_field_line`) and holding nothing but field lines
    (known labels, or a short "Label: value" below such a field): a message
    with the customer's words below a field line stays whole.  The cut
    is recorded as a loser, so ``--explain`` shows what was dropped.
    """
    message = lead.message or ""
    lines = message.split("\n")
    start = None
    for index in range(len(lines) - 1, 0, -1):
        line = lines[index]
        if not line.strip():
            continue
        if reader.shaped_field_line(line) is not None:
            start = index
        elif not (reader.is_field_line(line) or _label_like(line)):
            break
    if start is None:
        return
    head = "\n".join(lines[:start]).rstrip()
    if head.strip():
        key = reader.shaped_field_line(lines[start])
        lead.losers.setdefault("message", []).append(
            Loser(SOURCE, "field lines", "\n".join(lines[start:])[:80], f"a {key} field")
        )
        lead.message = head


def _holds_fields(message: str) -> bool:
    """Two or more e-mail/phone/name label lines: a message that is really the whole form."""
    if len(message) > 20_000:
        return False
    keys = [p.key for p in reader.read_text(message[:3000]) if p.key in ("email", "phone", "name")]
    return len(keys) >= 2


def _overlap(mine: str, theirs: str) -> float:
    """Share of the words of ``mine`` that ``theirs`` has too (0 when ``mine`` has none)."""
    words = set(_WORD.findall(mine[:600].lower()))
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(theirs[:3000].lower()))) / len(words)


def decide_kind(lead: ParsedLead) -> None:
    """A parser that found no message decided "inquiry" without the customer's words; with
    the message the general reader found, the kind is decided again the same way."""
    from .fields import detect_kind

    if lead.kind != "inquiry" or not lead.message:
        return
    origin = lead.provenance.get("message")
    if origin is not None and origin.reader == SOURCE:
        return
    kind = detect_kind(" ".join(filter(None, (lead.subject, lead.message))))
    if kind != "inquiry":
        lead.kind = kind
        lead.losers.setdefault("kind", []).append(
            Loser(SOURCE, lead.parser, "inquiry", "decided before the message was read")
        )
