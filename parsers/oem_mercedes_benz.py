"""Mercedes-Benz dealer lead mails ("Persönliche Angaben des Interessenten" template).

Recognised by the brand in a system position plus the template's section
titles, the ``Telefon / Mobil`` line and the 24-hour response promise.
"Der Kunde hat keine Nachricht eingegeben" means there is no message.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .message import MailView
from .model import ParsedLead
from .oem_common import Profile, build_lead, oem_matches

NAME = "oem_mercedes_benz"
PROFILE = Profile(
    brand_words=("mercedes-benz", "mercedes"),
    system_patterns=(
        re.compile(r"pers\u00f6nliche angaben des interessenten", re.IGNORECASE),
        re.compile(r"anfragen und informationen des interessenten", re.IGNORECASE),
        re.compile(r"der kunde hat keine nachricht eingegeben", re.IGNORECASE),
        re.compile(r"^\s*telefon\s*/\s*mobil\s*:", re.IGNORECASE | re.MULTILINE),
    ),
)


def matches(view: MailView) -> bool:
    return oem_matches(view, PROFILE)


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    return build_lead(
        view,
        ctx,
        name=NAME,
        source="oem:mercedes-benz",
        default_make="Mercedes-Benz",
        default_kind="inquiry",
    )
