"""Hyundai lead mails: service appointment requests and sales/test-drive leads.

Recognised by the brand in a system position plus lead-system structure
(lead number, service-request wording, a ``Kennzeichen:`` line, response
deadline).  A service lead names the customer's own car by licence plate and
VIN; the plate is never a listing id.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .message import MailView
from .model import ParsedLead
from .oem_common import Profile, build_lead, oem_matches

NAME = "oem_hyundai"
PROFILE = Profile(
    brand_words=("hyundai",),
    system_patterns=(
        re.compile(r"service-?anfrage|werkstatttermin|servicetermin", re.IGNORECASE),
        re.compile(r"^\s*(?:amtliches\s+)?kennzeichen\s*:", re.IGNORECASE | re.MULTILINE),
        re.compile(r"\bhyundai\s+(?:lead|partner|service)", re.IGNORECASE),
    ),
)


def matches(view: MailView) -> bool:
    return oem_matches(view, PROFILE)


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    return build_lead(
        view, ctx, name=NAME, source="oem:hyundai", default_make="Hyundai", default_kind="inquiry"
    )
