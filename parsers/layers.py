"""The layered extractor: the source parser's lead completed by general readers, with provenance.

Where it sits: ``extract_lead`` runs the registry's parser, then
:func:`complete`, then ``finalize``.  Layers, strongest first:

1. the **source parser** (it knows which id is a listing id, which amount is
   the price, where the relay address is);
2. the **general reader** (:mod:`.reader`: any label layout, any lexicon word);
3. the **scanners** (:mod:`.scanners`: phone numbers, prices, VINs, "(Nr. …)"
   in the customer's own words);
4. the **catalogue** (:mod:`.catalogue`: make and model in an offer line,
   the subject or prose).

A lower layer only fills a gap; every field records which layer produced it
(``lead.provenance``) and what the other layers offered (``lead.losers``).

This module only orders the layers; each has its own module:
:mod:`.layer_message` (the message block, the kind), :mod:`.layer_customer`
(labelled customer fields, names from headlines and sign-offs),
:mod:`.layer_vehicle` (labelled vehicle fields, extras), :mod:`.layer_scan`
(the scanners, the phone's country), :mod:`.layer_catalogue` (make and model)
and :mod:`.merge` (provenance, precedence, conflicts).
Where the source parser and the general reader disagree on an identifying
field, the source parser still wins but the confidence drops and a warning
asks for a check ("please check" in the web UI) instead of a silent guess.
Non-leads (bounces, notices, hand-overs) are left as the parser made them.
"""

from __future__ import annotations

import copy
import re

from . import reader
from .context import ParseContext
from .htmltext import html_text
from .layer_catalogue import fill_from_catalogue
from .layer_customer import fill_customer, name_from_headline, name_from_signoff
from .layer_message import decide_kind, fill_message
from .layer_scan import phone_country, scan
from .layer_vehicle import capture_extras, fill_vehicle
from .marketplace import strip_markdown_links
from .merge import (
    CATALOGUE,
    CONFLICT_PENALTY,
    GENERAL,
    SCANNER,
    SOURCE,
    SUBJECT,
    record_source,
    settle_lead,
)
from .message import MailView
from .model import ParsedLead

__all__ = ["CATALOGUE", "CONFLICT_PENALTY", "GENERAL", "SCANNER", "SOURCE", "SUBJECT", "complete"]

# structured formats: the source parser reads every field there is; prose layers add noise
_STRUCTURED = frozenset({"adf"})
# the marketplace parsers' reason when they recognised nothing ("mobile.de notice: <subject>")
_NOTHING_FOUND = re.compile(r"^(?:mobile\.de|kleinanzeigen|autoscout24) notice: ")
_PERSON_KEYS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "salutation",
        "email",
        "phone",
        "street",
        "postcode",
        "city",
        "postcode_city",
        "country",
        "message",
    }
)


def complete(lead: ParsedLead, view: MailView, ctx: ParseContext) -> ParsedLead:
    """Record the source parser's fields, then fill the gaps from the lower layers."""
    record_source(lead)
    if lead.handed_over or lead.parser in _STRUCTURED:
        return lead
    if lead.non_lead_reason:
        return _revive(lead, view, ctx)
    return _layers(lead, view, ctx)


def _revive(lead: ParsedLead, view: MailView, ctx: ParseContext) -> ParsedLead:
    """A platform mail its parser found nothing in ("… notice: <subject>") may be an inquiry
    in a layout the parser does not know: it becomes a lead only if the general reader finds
    a labelled customer address or phone *and* a labelled message."""
    if not _NOTHING_FOUND.match(lead.non_lead_reason or ""):
        return lead
    trial = copy.deepcopy(lead)
    trial.non_lead_reason = None
    _layers(trial, view, ctx)
    labelled = [
        trial.provenance.get(path)
        for path in ("customer.email", "customer.phone")
        if path not in lead.provenance
    ]
    message = trial.provenance.get("message")
    if not any(o and o.reader == GENERAL for o in labelled) or not message:
        return lead
    if message.reader != GENERAL:
        return lead
    trial.is_lead = True
    trial.confidence = max(trial.confidence, 0.45)
    trial.warnings.append(
        f"{lead.parser} saw no inquiry ({lead.non_lead_reason}); the general reader found one"
    )
    return trial


def _layers(lead: ParsedLead, view: MailView, ctx: ParseContext) -> ParsedLead:
    """Layers 2-4 over a lead (see the module docstring)."""
    from .generic import unquoted

    # a quoted earlier mail (the dealer's own offer, phone, price) is never this lead's data
    # the fields and the customer's words stand in a mail's head: a 250 KB body is read at
    # its first 60 KB (the parse p99 of RELIABILITY.md M2 holds for mails up to 1 MB)
    head = view.text[:_LAYER_TEXT_CHARS]
    text = unquoted(head)
    markup = view.html if text.strip() == head.strip() else None
    pairs: list[reader.Pair] = []
    if not _complete(lead) or len(view.text) <= _ALWAYS_READ_CHARS:
        pairs = reader.read_all(text, markup)
        if markup and (len(view.text) < 600 or sum(p.section == "main" for p in pairs) < 3):
            from_html = html_text(_BLOCK_ENDS.sub("<br>", markup[:_HTML_READ_CHARS]))
            pairs += reader.read_text(from_html)
            if len(view.text) < 600:
                text = f"{text}\n{from_html}"  # a "view in browser" stub: the HTML is the mail
    # a trade-in or financing block holds the customer's car and money, never another person:
    # customer fields count wherever they stand
    main = [
        p
        for p in pairs
        if p.section == "main" or (p.key in _PERSON_KEYS and p.section != "marketing")
    ]
    fill_message(lead, main)
    fill_customer(lead, main, ctx)
    name_from_headline(lead, text)
    name_from_signoff(lead)
    fill_vehicle(lead, main)
    scan(lead, text, view.subject, ctx)
    # a text part made from HTML writes a title as "[Cupra Formentor 1.5 TSI](https://…)":
    # the catalogue reads the link's words (the scanners above still saw its target)
    fill_from_catalogue(lead, main, view, strip_markdown_links(text) if "](" in text else text)
    phone_country(lead, view, ctx)
    decide_kind(lead)
    capture_extras(lead, pairs)
    settle_lead(lead)
    _oem_test_lead(lead)
    return lead


def _oem_test_lead(lead: ParsedLead) -> None:
    """An OEM router's test lead (test name *and* test address) is no customer, however
    the names were labelled: the OEM parser checks the names it read, this checks the
    names the layers completed."""
    from .oem_common import looks_like_test

    if not lead.source.startswith("oem:") or not lead.is_lead:
        return
    if all(looks_like_test(lead.customer)):
        lead.is_lead = False
        lead.non_lead_reason = "test lead: test name and test e-mail address"
        lead.warnings.append("OEM test lead (test name and test address): not a customer")


# Reading costs time in proportion to the text (bench/parse.py keeps parsing at >= 0.4x
# the bare stdlib): a long mail whose parser already found the whole lead is not re-read
# for confirmation; a short one (every real lead form) always is.
_ALWAYS_READ_CHARS = 3_000
_LAYER_TEXT_CHARS = 60_000
# the HTML a second time as text: its head holds the fields (a form is never 100 KB)
_HTML_READ_CHARS = 100_000


def _complete(lead: ParsedLead) -> bool:
    customer, vehicle = lead.customer, lead.vehicle
    return bool(
        customer.name
        and customer.email
        and customer.phone
        and lead.message
        and (vehicle.model or vehicle.make)
    )


# definition-list and list items end a line of their own (html_to_text glues them)
_BLOCK_ENDS = re.compile(r"(?i)</(?:dd|dt|li|h[1-6])\s*>")
