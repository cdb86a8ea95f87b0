"""Volkswagen and Audi configurator leads (one module: the same group's lead system).

The source is ``oem:audi`` or ``oem:volkswagen`` by the brand the *system*
names (From display name, sender-domain label, subject, the ``Audi Code``
label), never by the vehicle text: an Audi lead may offer a VW as trade-in.
The configurator code (``Audi Code``/``VW Code``) identifies a configuration,
not an ad, and a leasing rate or down payment is never the price (UVP is).
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .message import MailView
from .model import ParsedLead
from .oem_common import CONFIG_CODE, Profile, brand_in_sender_or_subject, build_lead, oem_matches

NAME = "oem_volkswagen"
PROFILE = Profile(
    brand_words=("audi", "volkswagen", "vw"),
    system_patterns=(
        CONFIG_CODE,
        re.compile(r"konfigurator|configurator", re.IGNORECASE),
        re.compile(r"\bUVP\b"),
    ),
)
_AUDI_CODE = re.compile(r"\baudi\s+code\s*:", re.IGNORECASE)


def matches(view: MailView) -> bool:
    return oem_matches(view, PROFILE)


def brand(view: MailView) -> str:
    """``audi`` or ``volkswagen``: the brand the lead system names, not the car text."""
    if _AUDI_CODE.search(view.text) or brand_in_sender_or_subject(view, ("audi",)):
        return "audi"
    return "volkswagen"


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    slug = brand(view)
    return build_lead(
        view,
        ctx,
        name=NAME,
        source=f"oem:{slug}",
        default_make="Audi" if slug == "audi" else "Volkswagen",
        default_kind="inquiry",
    )
