"""Long addresses that may wrap only at sensible points.

An e-mail address wider than its column must wrap somewhere; left to the
browser it breaks anywhere ("sam.taylor@customers.exa mple").  Here it gets
break opportunities (``<wbr>``) after the "@" and the dots, so it wraps as
"sam.taylor@" / "customers.example" and nowhere else.  The text is escaped
piece by piece: the result is safe markup whatever the address contains.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

BREAK_AFTER = re.compile(r"([@.])")


def breakable(text: object) -> Markup:
    """``text`` escaped, with a break opportunity after each "@" and "."."""
    if text is None:
        return Markup("")
    pieces = BREAK_AFTER.split(str(text))
    out = [escape(piece) + (Markup("<wbr>") if piece in ("@", ".") else "") for piece in pieces]
    return Markup("").join(out)
