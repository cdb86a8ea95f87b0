"""The general field reader: label/value pairs from any text or HTML layout.

Where it sits: under every source parser.  A source parser knows its portal's
exact template; this reader knows none and reads every layout a form builder
or lead system produces, labels looked up in the multilingual lexicon
(:mod:`.lexicon`):

- ``Label: value``, ``Label : value``, ``Label => value``, ``Label -> value``,
  ``Label<TAB>value`` and ``Label    value`` (fixed-width columns);
- ``Label value`` on one line, for values whose shape proves the field (a phone
  number, an e-mail address, a price, a VIN, an id) — prose is never split so;
- a label alone on its line and the value on the next (table cells turned to
  text); a message label followed by the customer's paragraphs;
- HTML tables with labels in the first column *or* in a header row, and
  definition lists (``<dt>``/``<dd>``), read from the markup itself.

Every pair keeps its label and layout, so ``mailgate parse --explain`` can say
where a value came from.  All work is linear: lines are capped, patterns have
no nested quantifiers, HTML is walked with bounded regular expressions.
"""

from __future__ import annotations

import html as html_lib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .fields import EMAIL_PATTERN
from .lexicon import (
    LABEL_PREFIXES,
    MAX_LABEL_WORDS,
    field_of,
    fold_word,
    section_of,
    starts_like_label,
    trie_pattern,
)
from .message import clean_line

MAX_LINES = 3000
MAX_LINE = 2000
MAX_HTML = 300_000
MAX_MESSAGE = 20_000


@dataclass(frozen=True)
class Pair:
    """One value the reader found: which field, under which label, in which layout."""

    key: str
    value: str
    label: str
    layout: str
    section: str = "main"
    line: int = 0


# label, then the first separator: "=>", "->", ":", a tab or a run of 2+ spaces (columns)
_SEPARATOR = re.compile(r"[ \t\u00a0]*(=>|->|:|\t|[ \u00a0]{2,})[ \t\u00a0]*")
_BULLET = re.compile(r"^[ \t>]*(?:[*•·\-–]|\d{1,2}[.)])?[ \t]*")
_PHONE_SHAPE = re.compile(r"[+(]?\d[\d \t()/.\-–]{3,24}\d")
_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9./#_-]{1,39}")
_DIGIT = re.compile(r"\d")
# keys whose value proves itself by its shape: read even as "Label value" with one space
_SHAPED_KEYS = frozenset(
    {"phone", "email", "price", "vin", "listing_id", "stock_number", "mileage", "postcode"}
)
_SINGLE_LINE_LIMIT = 200
# in a "Label value" form the value starts with a capital or a digit ("First name Maximilian")
_CAPITAL = re.compile(r"\s+(?:[A-ZÄÖÜ0-9+]|(?:von|van|de|der|den|zu|di|da|du|le|la)\s)")


_NUMBER_LIST = re.compile(r"\s+/\s+|\s*;\s*|\s*,\s*|\s+oder\s+|\s+or\s+|\s+of\s+|\s+ou\s+")


def _first_number(value: str) -> str:
    """The first of "0431 123456 / 0171 2233445" (a landline and a mobile in one field);
    "0711 / 123456" stays one number (its parts are too short to be numbers)."""
    parts = [p for p in _NUMBER_LIST.split(value) if p.strip()]
    if len(parts) > 1 and all(len(_DIGIT.findall(p)) >= 6 for p in parts):
        return parts[0].strip()
    return value


def plausible(key: str, value: str) -> bool:
    """Does ``value`` look like a value of field ``key``?  Guards every layout guess."""
    value = value.strip()
    if not value:
        return False
    if key == "email":
        return bool(EMAIL_PATTERN.search(value))
    if key == "phone":
        value = _first_number(value)
        match = _PHONE_SHAPE.match(value.lstrip("+ "))
        digits = len(_DIGIT.findall(value[:40]))
        return bool(match) and 5 <= digits <= 16 and not EMAIL_PATTERN.search(value)
    if key in ("name", "first_name", "last_name"):
        return (
            len(value) <= 80
            and "@" not in value
            and not _DIGIT.search(value)
            and len(value.split()) <= 6
        )
    if key in ("price", "mileage", "postcode", "down_payment", "monthly_rate"):
        return bool(_DIGIT.search(value)) and len(value) <= 60
    if key == "vin":
        compact = value.replace(" ", "").upper()
        return bool(re.search(r"[A-HJ-NPR-Z0-9]{17}", compact))
    if key in ("listing_id", "stock_number"):
        token = value.split()[0] if value.split() else ""
        return (
            bool(_ID_SHAPE.fullmatch(token.strip(".,;()")))
            and bool(_DIGIT.search(token))
            and len(value.split()) <= 3
        )
    if key == "message":
        return True
    return len(value) <= _SINGLE_LINE_LIMIT


def read_text(text: str) -> list[Pair]:
    """Every label/value pair in ``text``, in reading order (see the module docstring).

    Cached for the last few texts: the generic parser and the layers read the same body.
    """
    return list(_read_text(text))


@lru_cache(maxsize=8)
def _read_text(text: str) -> tuple[Pair, ...]:
    pairs = _read(text, loose=False)
    if sum(p.layout == "label value" for p in pairs) >= 2:
        # a form of "Label value" lines (bold labels without colons): its other labels
        # ("First name Maximilian", "Comments I would like …") are read the same way
        keys = {p.key for p in pairs}
        pairs += tuple(p for p in _read(text, loose=True) if p.key not in keys)
    return pairs


def shaped_field_line(line: str) -> str | None:
    """The field a line states with a value that proves itself ("Kaufpreis: € 24.495"), or None.

    Only fields whose value has a shape of its own (:data:`_SHAPED_KEYS`: phone,
    e-mail, price, ids, mileage, postcode) count, so a customer's sentence that
    happens to start with a label word ("Preis ist verhandelbar?") is no field line.
    """
    cleaned = _BULLET.sub("", line, count=1).strip()
    # a label starts a line with a letter: "(Nr. FF-3398)" is a wrapped sentence's tail
    found = _split(cleaned) if cleaned[:1].isalpha() and len(cleaned) <= MAX_LINE else None
    if found is None:
        return None
    key, _, value, _ = found
    return key if key in _SHAPED_KEYS and plausible(key, value) else None


def is_field_line(line: str) -> bool:
    """A "Label: value" line of any known field but the message (a form's field line)."""
    cleaned = _BULLET.sub("", line, count=1).strip()
    found = _split(cleaned) if cleaned[:1].isalpha() and len(cleaned) <= MAX_LINE else None
    return found is not None and found[0] != "message" and bool(found[2])


def _read(text: str, *, loose: bool) -> tuple[Pair, ...]:
    pairs: list[Pair] = []
    lines = _expand_pipes(text.splitlines()[:MAX_LINES])
    section = "main"
    index = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        if len(raw) > MAX_LINE or not raw.strip():
            continue
        line = _BULLET.sub("", raw, count=1).strip()
        found = _split(line, loose=loose)
        if found is None:
            heading = section_of(line)
            if heading is not None:
                section = "main" if heading in ("vehicle", "customer") else heading
                if heading == "customer":
                    block, index = _contact_block(lines, index)
                    pairs.extend(block)
            continue
        key, label, value, layout = found
        if key == "message":
            body, index = _message_lines(value, lines, index)
            if body:
                pairs.append(Pair(key, body, label, layout, section, index))
            continue
        if not value:
            nxt = _next_filled(lines, index)
            if nxt is None:
                continue
            candidate = lines[nxt].strip()
            if _split(candidate) is not None or not plausible(key, candidate):
                continue
            value, layout, index = candidate, "next line", nxt + 1
        cleaned = clean_line(value, 255)
        if cleaned and plausible(key, cleaned):
            pairs.append(Pair(key, cleaned, label, layout, section, index))
            if key == "name" and layout == "next line":
                block, index = _contact_block(lines, index, {"name"})
                pairs.extend(block)
    return tuple(pairs)


_PIPE = re.compile(r"\s+[|¦]\s+")


def _expand_pipes(lines: list[str]) -> list[str]:
    """``Anrede: Herr | Vorname: Rainer | Nachname: Stolz``: one pair per segment."""
    if not any(" | " in line for line in lines):
        return lines
    out: list[str] = []
    for line in lines:
        if " | " in line and line.count(":") >= 2 and len(line) <= MAX_LINE:
            out.extend(_PIPE.split(line.strip()))
        else:
            out.append(line)
    return out


def _split(line: str, *, loose: bool = False) -> tuple[str, str, str, str] | None:
    """(key, label, value, layout) if ``line`` starts with a known label, else None."""
    if not line or len(line) > MAX_LINE or not starts_like_label(line):
        return None
    match = _SEPARATOR.search(line, 0, 80)
    if match and 0 < match.start() <= 60:
        label = line[: match.start()]
        key = field_of(label)
        if key is not None:
            sep = match.group(1)
            layout = {
                ":": "label: value",
                "=>": "label => value",
                "->": "label -> value",
            }.get(sep, "columns")
            if sep == ":" and match.start() < len(line) and line[match.start()] in " \t":
                layout = "label : value"
            return key, label.strip(), line[match.end() :].strip(), layout
    bare = line.rstrip(" :\t")
    key = field_of(bare) if len(bare) <= 60 else None
    if key is not None:
        return key, bare, "", "label alone"
    words = line.split(" ", MAX_LABEL_WORDS)
    folded = ""
    found: list[tuple[str, str]] = []
    for count in range(1, min(MAX_LABEL_WORDS, len(words) - 1) + 1):
        folded += fold_word(words[count - 1])
        if folded not in LABEL_PREFIXES:
            break
        label = " ".join(words[:count])
        key = field_of(label)
        if key in _SHAPED_KEYS or (loose and key is not None and _CAPITAL.match(line, len(label))):
            found.append((key, label))
    for key, label in reversed(found):  # the longest label first
        value = line[len(label) :].strip()
        if plausible(key, value):
            return key, label, value, "label value"
    return None


def _contact_block(
    lines: list[str], index: int, taken: set[str] | None = None
) -> tuple[list[Pair], int]:
    """Unlabelled lines under a customer heading ("Kunde", "Kontaktdaten:"): a name, an
    address, a phone number, one per line, recognised by their shape."""
    found: list[Pair] = []
    taken = set(taken or ())
    start = index
    while index < len(lines) and index < start + 6:
        line = lines[index].strip()
        if not line:
            if found:
                break
            index += 1
            continue
        if _split(line) is not None or section_of(line) is not None:
            break
        if "email" not in taken and EMAIL_PATTERN.fullmatch(line.strip("<>")):
            key = "email"
        elif "phone" not in taken and plausible("phone", line) and line.lstrip()[:1] in "+0(":
            key = "phone"
        elif "name" not in taken and not found and plausible("name", line) and _person(line):
            key = "name"
        else:
            break
        taken.add(key)
        found.append(Pair(key, line, "(customer block)", "contact block", "main", index))
        index += 1
    return found, (index if found else start)


def _person(line: str) -> bool:
    words = line.split()
    return 2 <= len(words) <= 5 and all(w[:1].isupper() or w.lower() in _PARTICLES for w in words)


_PARTICLES = frozenset({"von", "van", "de", "der", "den", "zu", "du", "la", "le", "di", "da"})


def _next_filled(lines: list[str], index: int) -> int | None:
    for candidate in range(index, min(index + 3, len(lines))):
        if lines[candidate].strip():
            return candidate
    return None


def _message_lines(first: str, lines: list[str], index: int) -> tuple[str, int]:
    """The customer's paragraphs after a message label, up to the next label or a footer.

    Blank lines stay (paragraphs); a line that starts a known label, a
    signature separator or a platform footer ends the block.
    """
    from .boilerplate import is_footer

    body = [first] if first else []
    size = len(first)
    while index < len(lines) and size < MAX_MESSAGE:
        line = lines[index]
        if not _may_end_block(line):
            body.append(line.rstrip())
            size += len(line)
            index += 1
            continue
        stripped = line.strip()
        if stripped in ("--", "-- ") or (stripped and is_footer(stripped)):
            break
        if stripped and len(stripped) <= 80 and _ends_block(stripped):
            break
        body.append(line.rstrip())
        size += len(line)
        index += 1
    return "\n".join(body).strip(), index


def _first_words() -> set[str]:
    from .boilerplate import FIRST_WORDS as FOOTER_WORDS
    from .lexicon import FIELD_LABELS, SECTION_LABELS

    words = set(FOOTER_WORDS) | {"--", "©", "(c)", "online", "hier", "zur", "click", "klicken"}
    words |= {"ihr", "ihre", "ihren", "dein", "deine", "sein", "seine", "your", "his", "her"}
    words |= {"uw", "je", "zijn", "haar", "votre", "vos", "son", "sa", "unser", "unsere"}
    for table in (FIELD_LABELS, SECTION_LABELS):
        for labels in table.values():
            for label in labels:
                first = label.split()[0].lower()
                words.add(first)
                plain = "".join(
                    c for c in unicodedata.normalize("NFKD", first) if not unicodedata.combining(c)
                )
                words.add(plain)
                words.add(re.split(r"[-.'/]", first)[0] or first)
    return {w for w in words if w}


# a line that could end a message block: it starts with the first word of a label, a
# section heading or a footer; every other line is the customer's text (one C-level match)
_MAY_END = re.compile(
    r"[ \t>*•·\-–_|\[]*(?:\d{1,2}[.)][ \t]*)?(?:" + trie_pattern(_first_words()) + r")",
    re.IGNORECASE,
)


def _may_end_block(line: str) -> bool:
    return bool(_MAY_END.match(line)) or "rowser" in line or "©" in line or not line.strip()


def _ends_block(line: str) -> bool:
    """A labelled line (known label) or a section heading ends a message block."""
    cleaned = _BULLET.sub("", line, count=1)
    found = _split(cleaned)
    if found is not None:
        key, _, value, layout = found
        return layout != "label value" or key != "message"
    return section_of(cleaned) is not None


# --- HTML ---------------------------------------------------------------------------

_ROW = re.compile(r"<tr\b", re.IGNORECASE)
_CELL = re.compile(r"<t([dh])\b[^>]{0,500}>", re.IGNORECASE)
_TABLE_END = re.compile(r"</table\s*>", re.IGNORECASE)
_DEF = re.compile(
    r"<dt\b[^>]{0,300}>(.{0,300}?)</dt\s*>\s*<dd\b[^>]{0,300}>(.{0,3000}?)</dd\s*>",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^<>]{0,500}>")
_BR = re.compile(r"<br\s*/?>|</p\s*>|</div\s*>", re.IGNORECASE)


def _cell_text(markup: str) -> str:
    text = _BR.sub("\n", markup)
    text = html_lib.unescape(_TAG.sub(" ", text)).replace("\u00a0", " ")
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()


def _rows(markup: str) -> list[list[str]]:
    """Table rows as lists of cell texts; a row ends at the next ``<tr>`` or ``</table>``."""
    rows: list[list[str]] = []
    starts = [m.start() for m in _ROW.finditer(markup)]
    for number, start in enumerate(starts[:2000]):
        end = starts[number + 1] if number + 1 < len(starts) else len(markup)
        closing = _TABLE_END.search(markup, start, end)
        chunk = markup[start : closing.start() if closing else end]
        cells = _CELL.split(chunk)
        # split keeps the d/h group: [before, 'd', cell, 'd', cell ...]
        texts = [_cell_text(cells[i]) for i in range(2, len(cells), 2)]
        rows.append([t for t in texts])
    return rows


def read_html(markup: str | None) -> list[Pair]:
    """Pairs from HTML tables (label column or header row) and definition lists."""
    if not markup:
        return []
    markup = markup[:MAX_HTML]
    pairs: list[Pair] = []
    lowered = markup[:MAX_HTML].lower()
    if "<dt" in lowered:
        for match in _DEF.finditer(markup):
            label, value = _cell_text(match.group(1)), _cell_text(match.group(2))
            _add(pairs, label, value, "definition list")
    if "<tr" not in lowered:
        return pairs
    rows = _rows(markup)
    section = "main"
    for number, row in enumerate(rows):
        filled = [c for c in row if c]
        if len(filled) == 1 and section_of(filled[0]) is not None:
            heading = section_of(filled[0])
            section = "main" if heading in ("vehicle", "customer") else str(heading)
            continue
        if section != "main":
            continue
        known = [field_of(c.rstrip(" :")) if len(c) <= 60 else None for c in row]
        if sum(k is not None for k in known) >= 2 and number + 1 < len(rows):
            values = rows[number + 1]
            if len(values) == len(row) and not any(
                len(v) <= 60 and field_of(v.rstrip(" :")) for v in values
            ):
                for label, value in zip(row, values, strict=True):
                    _add(pairs, label, value, "table: header row")
                continue
        filled = [c for c in row if c]
        if len(filled) >= 2 and len(filled[0]) <= 60 and field_of(filled[0].rstrip(" :")):
            _add(pairs, filled[0], filled[1], "table: label column")
    return pairs


def _add(pairs: list[Pair], label: str, value: str, layout: str) -> None:
    label = label.strip().rstrip(":").strip()
    key = field_of(label)
    if key is None or not value.strip():
        return
    value = value.strip() if key == "message" else (clean_line(value, 255) or "")
    if value and plausible(key, value):
        pairs.append(Pair(key, value, label, layout, "main", 0))


def read_all(text: str, markup: str | None) -> list[Pair]:
    """Text pairs first (the body as the mail shows it), then what only the markup holds."""
    return read_text(text) + read_html(markup)


def first(pairs: list[Pair], key: str, section: str = "main") -> Pair | None:
    """The first pair for ``key`` in ``section``."""
    return next((p for p in pairs if p.key == key and p.section == section), None)
