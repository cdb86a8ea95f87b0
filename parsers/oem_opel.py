"""Opel LeadIT lead mails (the OEM's lead portal that forwards web and campaign leads).

Recognised by the brand in a system position plus LeadIT structure (lead ID,
campaign line, ``DE1234.00`` dealer number, response deadline), never by the
sender domain alone.  The LeadIT lead ID and the configurator code are kept out
of the listing id.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .message import MailView
from .model import ParsedLead
from .oem_common import Profile, build_lead, oem_matches

NAME = "oem_opel"
PROFILE = Profile(
    brand_words=("opel",),
    system_patterns=(
        re.compile(r"\bleadit\b", re.IGNORECASE),
        re.compile(r"^\s*kampagne\s*:", re.IGNORECASE | re.MULTILINE),
        re.compile(r"\bDE\d{4}\.\d{2}\b"),
    ),
)


def matches(view: MailView) -> bool:
    return oem_matches(view, PROFILE)


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    return build_lead(
        view, ctx, name=NAME, source="oem:opel", default_make="Opel", default_kind="inquiry"
    )
