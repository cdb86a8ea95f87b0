"""Case-insensitive patterns behind a plain substring test.

Python's ``re`` cannot skip ahead on a case-insensitive alternation: it tries
every alternative at every position, and a handful of such patterns searched
over every mail cost more than the rest of the parse (bench/parse.py).  Each
pattern here names words that every match must contain; on the lowered text a
substring test is a fast C loop, and the pattern runs only where one of the
words is present.  The verdict is the pattern's own: the gate only skips
texts on which the pattern cannot match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class GatedPattern:
    """``pattern`` searched only in texts whose lowered form contains one of ``needles``.

    Every match of ``pattern``, lowered, must contain at least one needle
    (``tests/test_parse_gate.py`` checks this on the words of each pattern).
    """

    pattern: re.Pattern[str]
    needles: tuple[str, ...]

    def search(self, text: str) -> re.Match[str] | None:
        lowered = _lowered(text)
        if not any(needle in lowered for needle in self.needles):
            return None
        return self.pattern.search(text)


@lru_cache(maxsize=16)
def _lowered(text: str) -> str:
    """``text.lower()``, once per text: several gates look at the same body."""
    return text.lower()


def gated(pattern: str, needles: tuple[str, ...], flags: int = 0) -> GatedPattern:
    """A compiled :class:`GatedPattern` (needles in lower case)."""
    return GatedPattern(re.compile(pattern, flags), tuple(n.lower() for n in needles))
