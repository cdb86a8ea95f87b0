"""Vehicles from a make/model catalogue: the car in an offer line, the subject or prose.

Where it sits: a layer under the source parsers (:mod:`.layers`) that fills a
missing make or model.  A label list cannot find "Ist der Ford Kuga noch
da?" or a subject "Anfrage: Škoda Octavia Combi"; a table of the makes sold
in Germany and their models can.  The table is shipped package data
(``parsers/data/vehicles.json``), so a dealer's new model is one line there.

Rules that keep it from guessing: a make is recognised by its name or an
alias (VW, Mercedes, MB, Skoda …) as a whole word; a model alone names its
make only when the model name is distinctive (``Kuga``, ``Octavia``), never a
word that is also common prose (``Up``, ``Note``, ``Leon``, ``Jazz``).  BMW
and Mercedes model codes are read by their shape ("320d", "3er", "C 220 d",
"C-Klasse", "GLC 300").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .lexicon import trie_pattern

SCAN_CHARS = 5_000


@dataclass(frozen=True)
class Vehicle:
    """A recognised vehicle and the words it was recognised from."""

    make: str
    model: str | None
    matched: str


@dataclass(frozen=True)
class _Catalogue:
    aliases: dict[str, str]  # lower-case alias -> make
    models: dict[str, dict[str, str]]  # make -> lower-case model -> model
    model_only: dict[str, tuple[str, str]]  # lower-case distinctive model -> (make, model)
    alias_pattern: re.Pattern[str]
    model_pattern: re.Pattern[str]


def _words(names: list[str]) -> str:
    """A trie-shaped alternation (see :func:`.lexicon.trie_pattern`): one step per position
    instead of one try per make, which kept long mails slow."""
    return trie_pattern({n.lower() for n in names}, space=r"[\s-]?")


@lru_cache(maxsize=1)
def catalogue() -> _Catalogue:
    """The shipped table, loaded once."""
    raw = resources.files(__package__).joinpath("data/vehicles.json").read_text("utf-8")
    data = json.loads(raw)
    ambiguous = {m.lower() for m in data.get("ambiguous_models", [])}
    aliases: dict[str, str] = {}
    models: dict[str, dict[str, str]] = {}
    owners: dict[str, set[str]] = {}
    for entry in data["makes"]:
        make = entry["name"]
        for alias in entry["aliases"]:
            aliases.setdefault(alias.lower(), make)
        models[make] = {m.lower(): m for m in entry["models"]}
        for model in entry["models"]:
            owners.setdefault(model.lower(), set()).add(make)
    model_only = {
        lowered: (next(iter(makes)), models[next(iter(makes))][lowered])
        for lowered, makes in owners.items()
        if len(makes) == 1
        and lowered not in ambiguous
        and len(lowered) >= 4
        and not lowered.isdigit()
        and lowered not in aliases
    }
    alias_pattern = re.compile(r"(?<![\w-])(" + _words(list(aliases)) + r")(?![\w-])", re.I)
    model_pattern = re.compile(r"(?<![\w-])(" + _words(list(model_only)) + r")(?![\w-])", re.I)
    return _Catalogue(aliases, models, model_only, alias_pattern, model_pattern)


_BMW = re.compile(
    r"(?<![\w-])([1-8]er|[1-8]\d{2}(?:[dei]|xd|xi|e)?|[XZ][1-7]|i[3-8]|iX\d?|M[2-8])(?![\w-])"
)
_MERCEDES = re.compile(
    r"(?<![\w-])((?:[ABCEGSV]|CL[AS]?|GL[ABCES]?|SL[CK]?|EQ[ABCESV])-Klasse"
    r"|(?:[ABCEGSV]|CL[AS]|GL[ABCES]|SL[CK]?|EQ[ABCESV])\s?\d{2,3}(?:\s?(?:[dehi]|CDI|de|4MATIC))?"
    r"|CLA|CLS|GLA|GLB|GLC|GLE|GLS|EQA|EQB|EQC|EQE|EQS|EQV|AMG\s+GT|Sprinter|Vito|Citan)(?![\w-])"
)


def find_vehicle(text: str | None) -> Vehicle | None:
    """The first vehicle named in ``text``: make (+ model), or a distinctive model alone."""
    if not text:
        return None
    return _find_vehicle(text[:SCAN_CHARS])


@lru_cache(maxsize=64)
def _find_vehicle(head: str) -> Vehicle | None:
    """:func:`find_vehicle` once per text: the layers ask it of the same subject, offer line
    and message several times (the result is frozen, so sharing it is safe)."""
    cat = catalogue()
    for match in cat.alias_pattern.finditer(head):
        alias = re.sub(r"[\s-]+", " ", match.group(1)).lower()
        make = cat.aliases.get(alias) or cat.aliases.get(match.group(1).lower())
        if make is None:
            continue
        if alias == "range rover":
            make = "Land Rover"
        model = _model_after(head, match.end(), make, cat)
        if match.group(1)[:1].islower() and model is None and alias not in ("smart",):
            continue  # "mini", "seat", "alfa" in prose: only with a model after them
        if len(alias) <= 2 and model is None and not match.group(1).isupper():
            continue
        return Vehicle(make, model, head[match.start() : match.end()].strip())
    found = cat.model_pattern.search(head)
    if found:
        key = re.sub(r"[\s-]+", " ", found.group(1)).lower()
        entry = cat.model_only.get(key) or _loose(cat, found.group(1))
        if entry:
            make, model = entry
            return Vehicle(make, model + _variants(head, found.end()), found.group(1))
    return None


def _loose(cat: _Catalogue, written: str) -> tuple[str, str] | None:
    wanted = re.sub(r"[\s-]", "", written).lower()
    for key, entry in cat.model_only.items():
        if re.sub(r"[\s-]", "", key) == wanted:
            return entry
    return None


def _model_after(text: str, position: int, make: str, cat: _Catalogue) -> str | None:
    """The model written right after the make (a few words at most)."""
    rest = text[position : position + 60]
    stripped = rest.lstrip(" \t-:")
    offset = len(rest) - len(stripped)
    if make == "BMW":
        code = _BMW.match(stripped)
        if code:
            return code.group(1) + _variants(text, position + offset + code.end())
    if make == "Mercedes-Benz":
        code = _MERCEDES.match(stripped)
        if code:
            return " ".join(code.group(1).split())
    lowered = stripped.lower()
    best: str | None = None
    for key, model in cat.models.get(make, {}).items():
        if lowered.startswith(key) and (
            len(lowered) == len(key) or not lowered[len(key)].isalnum()
        ):
            if best is None or len(key) > len(best):
                best = model
    if best is None:
        return None
    return best + _variants(text, position + offset + len(best))


# a trim/engine word: starts with a capital or digit, or mixes in a digit or a capital
# ("1.5", "TSI", "ST-Line", "xDrive30", "kWh", "e-tron"); plain lower-case words are prose
_TRIM = re.compile(
    r"[ \t]+((?:[A-ZÄÖÜ0-9]|[a-z]+[A-Z0-9])[\w.+/-]{0,24}|kWh|e-tron|quattro)"
    r"(?=$|[ \t\r\n,;:!?)]|\.(?:\s|$))"
)
_STOP_WORDS = frozenset(
    {
        "Ist",
        "Sind",
        "Hat",
        "Gibt",
        "Kann",
        "Ich",
        "Wir",
        "Sie",
        "Is",
        "Are",
        "Can",
        "Preis",
        "Price",
        "Nr",
        "Nr.",
        "No",
        "No.",
        "Ref",
        "EZ",
        "Bj",
        "km",
        "EUR",
        "CHF",
        "Euro",
        "Erstzulassung",
        "Kilometerstand",
        "Farbe",
        "Bestandsnummer",
        "Inserat",
        "Anzeige",
    }
)


# "Kia Niro 1.6 GDi Hybrid DynamicLine": codes, numbers, CamelCase and hyphenated words
# are trims by their shape; a plain capitalised word only if it is a known trim word,
# because in German prose every noun is capitalised
_PLAIN_WORD = re.compile(r"[A-ZÄÖÜ][a-zäöüßéè]+")
TRIM_WORDS = frozenset(
    """hybrid electric elektro plug sport sports sportline touring tourer turnier kombi combi
    variant avant sportback sportstourer sportsvan sportswagon sportwagon limousine sedan
    cabrio cabriolet coupé coupe roadster allspace cross crossover active elegance exclusive
    premium comfort comfortline trend trendline highline titanium vignale life style move united
    shine feel business executive luxury performance competition launch edition evolution
    intens techno iconic zen limited platinum dynamic spirit vision pure plus max pro long range
    standard dark black tekna acenta visia allure line ultimate prestige signature inscription
    momentum core ultra select advance avantgarde progressive prime ambition scout monte carlo
    xcellence maxi team pulse cool base basis essential lounge laurin klement trail adventure
    quattro estate wagon hatchback van kasten kastenwagen doppelkabine automatik automatic
    diesel benzin turbo lang kurz family city urban first design selection tech techline
    emotion ambiente connect veloce sprint competizione quadrifoglio lusso tributo
    techno intens initiale paris rs gt gti""".split()
)


def _variants(text: str, position: int) -> str:
    """Trim and engine words right after the model ("8 GTI", "1.5 TSI FR"), up to six."""
    out = ""
    for _ in range(6):
        found = _TRIM.match(text, position)
        if not found or found.group(1).rstrip(".") in _STOP_WORDS:
            break
        word = found.group(1)
        if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+|\d{4,}", word):
            break  # a price or a mileage, not a trim
        if _PLAIN_WORD.fullmatch(word) and word.lower() not in TRIM_WORDS:
            break  # a capitalised noun of the sentence ("Angebot", "Mitteilung"), not a trim
        out += " " + word
        position = found.end()
    return out


_TITLE_END = re.compile(
    r"\s+[–—|]\s+|,\s|\s\(|\s(?:€|EUR|CHF)\s?\d|\s\d[\d.,']*\s?(?:€|EUR|CHF)\b|\s+-\s+|\s{2,}|\t"
)
_PROSE_WORD = re.compile(
    r"(?i)\b(?:ist|sind|noch|der|die|das|und|mit|für|ich|wir|is|are|the|and|for|with|het|een"
    r"|est|le|la|les|il|una?)\b|[?!]"
)


def offer_lines(text: str | None, limit: int = 6_000) -> list[Vehicle]:
    """Lines that are a vehicle title ("Renault Clio TCe 90 Evolution", "VW Golf 8 GTI –
    24.990 €"): a make at the line start, then the model and trim up to a price or separator.

    A title line carries the full model with its trim; prose and the subject carry less.
    """
    if not text:
        return []
    cat = catalogue()
    found: list[Vehicle] = []
    for line in text[:limit].splitlines():
        stripped = line.strip(" \t*•-:>")
        if not 4 <= len(stripped) <= 100:
            continue
        match = cat.alias_pattern.match(stripped)
        if not match:
            continue
        alias = re.sub(r"[\s-]+", " ", match.group(1)).lower()
        make = "Land Rover" if alias == "range rover" else cat.aliases.get(alias)
        if make is None or (match.group(1).islower() and len(alias) <= 4):
            continue
        rest = _TITLE_END.split(stripped[match.end() :].strip(" -:"), maxsplit=1)[0].strip()
        if not rest or len(rest.split()) > 8 or _PROSE_WORD.search(rest):
            continue
        if _model_after(stripped, match.end(), make, cat) is None:
            continue  # the words after the make name no model of it
        if alias == "range rover":
            rest = f"Range Rover {rest}"
        found.append(Vehicle(make, rest, match.group(1)))
    return found
