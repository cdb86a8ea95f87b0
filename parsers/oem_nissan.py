"""Nissan lead-management mails (test-drive and offer requests from nissan.de).

Recognised by the brand in a system position plus lead-system structure
(lead number, ``Anfrageart:``, response deadline, lead-management wording).
Test leads with a test name *and* a test address are what Nissan's own
routing suppresses, so they become non-leads here too.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .message import MailView
from .model import ParsedLead
from .oem_common import Profile, build_lead, oem_matches

NAME = "oem_nissan"
PROFILE = Profile(
    brand_words=("nissan",),
    system_patterns=(
        re.compile(r"\blead[- ]?(?:management|portal)\b", re.IGNORECASE),
        re.compile(r"^\s*anfrageart\s*:", re.IGNORECASE | re.MULTILINE),
    ),
)


def matches(view: MailView) -> bool:
    return oem_matches(view, PROFILE)


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    return build_lead(
        view, ctx, name=NAME, source="oem:nissan", default_make="Nissan", default_kind="inquiry"
    )
