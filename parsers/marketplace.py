"""Extraction helpers shared by the marketplace parsers (mobile.de, Kleinanzeigen, AutoScout24).

The three portals differ in wording but share the same traps: the sender is a
system or relay address rather than the customer, the customer's text sits
between a label and a block of platform boilerplate, several numbers look like
an ad id, and a text/plain alternative may be empty while the HTML part holds
the data.  Each parser module states its own labels and markers; the logic that
applies them lives here once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from email.header import decode_header, make_header
from functools import lru_cache

from .context import ParseContext
from .fields import detect_kind, is_system_address
from .message import MAX_TEXT_CHARS, MailView, clean_line, clean_text, html_to_text
from .model import CustomerData, ParsedLead, VehicleData
from .normalize import known_make, parse_price, split_name
from .signals import domain_matches

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]{0,300})\]\((?:https?|mailto):[^)\s]{0,2000}\)")
_SUBJECT_TAG = re.compile(r"^\s*(?:\[[^\]]{1,30}\]\s*|(?:aw|wg|re|fw|fwd|sv|antw)\s*:\s*)+", re.I)

# Lines that start a quoted earlier message in a relay thread (ECG's own
# reply-cutting patterns, Outlook's German separators, Dutch and French clients).
_QUOTE_START = re.compile(
    "|".join(
        (
            r"^[ \t]*am [^\n]{3,120}(?:schrieb|schreef|wrote)\b[^\n]*$",
            r"^[ \t]*op [^\n]{3,120}\bschreef\b[^\n]*$",
            r"^[ \t]*le [^\n]{3,120}\ba écrit\b[^\n]*$",
            r"^[ \t]*on [^\n]{3,120}\bwrote:[ \t]*$",
            r"^[ \t]*-{2,}[ \t]*(?:ursprüngliche nachricht|original message|oorspr)",
            r"^[ \t]*-{5,}[ \t]*$",
            r"^[ \t]*gesendet:[ \t]+\w+,[ \t]+\d{1,2}\.",
            r"^[ \t]*von:[ \t]+[^\n]*@",
            r"^[ \t]*>",
        )
    ),
    re.IGNORECASE | re.MULTILINE,
)


def subject_core(subject: str | None) -> str:
    """The subject without ``[EXTERN]``-style gateway tags and ``AW:``/``WG:`` prefixes."""
    return _SUBJECT_TAG.sub("", subject or "").strip()


def decode_words(value: str) -> str:
    """Decode leftover RFC 2047 words (the fallback path for unreadable headers keeps them)."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - undecodable words: keep them as written
        return value


def body_text(view: MailView, markers: Sequence[str]) -> str:
    """The body part that carries the portal's fields.

    A text/plain alternative can be a useless "view in browser" stub while the
    HTML part holds everything, so the plain text is used only if it contains
    one of the portal's markers.
    """
    plain = view.text if view.text.strip() else _undivided_payload(view)
    lowered = plain.lower()
    if any(m.lower() in lowered for m in markers) or not view.html:
        return strip_markdown_links(plain)
    from_html = html_to_text(view.html)
    lowered_html = from_html.lower()
    if any(m.lower() in lowered_html for m in markers):
        return strip_markdown_links(from_html)
    return strip_markdown_links(plain)


def _undivided_payload(view: MailView) -> str:
    """The raw body of a multipart whose boundary never matched (Python keeps it as one string).

    Best effort only: boundary and part-header lines are dropped, the rest is
    taken as written, so a broken container still yields the portal's fields.
    """
    try:
        payload = view.message.get_payload()
    except Exception:  # noqa: BLE001 - nothing to recover
        return ""
    if not isinstance(payload, str) or not view.message.get_content_maintype() == "multipart":
        return ""
    lines = [
        line
        for line in payload[:MAX_TEXT_CHARS].splitlines()
        if not line.startswith("--") and not re.match(r"^content-[\w-]+:", line, re.IGNORECASE)
    ]
    return clean_text("\n".join(lines))


def strip_markdown_links(text: str) -> str:
    """``[Inserat ansehen](https://…)`` -> ``Inserat ansehen`` (text parts generated from HTML)."""
    return _MARKDOWN_LINK.sub(lambda m: m.group(1), text)


@lru_cache(maxsize=512)
def _label_pattern(label: str) -> re.Pattern[str]:
    return re.compile(
        r"^[ \t]*[*•-]?[ \t]*" + re.escape(label) + r"[ \t\u00a0]*:[ \t\u00a0]*(.*)$",
        re.IGNORECASE | re.MULTILINE,
    )


def label_value(text: str, labels: Iterable[str], *, max_len: int = 255) -> str | None:
    """The value after the first of ``labels`` (``Label: value``, or value on the next line).

    One C-level regex search per label over the whole text, so a huge body
    costs a few linear scans rather than a Python loop per line and label.
    """
    for label in labels:
        for match in _label_pattern(label).finditer(text):
            value = match.group(1).strip()
            if not value:
                following = text[match.end() : match.end() + 2000].split("\n")[1:4]
                value = next((x.strip() for x in following if x.strip()), "")
            value = clean_line(value, max_len) or ""
            if value:
                return value
    return None


def _line_start(markers: Iterable[str]) -> re.Pattern[str]:
    return _line_start_cached(tuple(markers))


@lru_cache(maxsize=256)
def _line_start_cached(markers: tuple[str, ...]) -> re.Pattern[str]:
    """Markers at a line start; a trailing ``:`` may follow spaces (French ``Prix :``)."""
    alternatives = "|".join(
        re.escape(m[:-1]) + r"\s*:" if m.endswith(":") else re.escape(m) for m in markers
    )
    return re.compile(r"^[ \t*•-]*(?:" + alternatives + ")", re.IGNORECASE | re.MULTILINE)


def section(text: str, starts: Iterable[str], stops: Iterable[str]) -> str:
    """Text after the first line starting with a start marker, up to a line starting with a stop.

    Markers count only at the start of a line: a customer who writes "ist eine
    Inzahlungnahme möglich?" must not cut their own message short.
    """
    begin = _line_start(starts).search(text)
    if begin is None:
        return ""
    return until(text[begin.end() :], stops)


def until(text: str, stops: Iterable[str]) -> str:
    """``text`` up to the first line that starts with one of ``stops``."""
    end = _line_start(stops).search(text)
    return text if end is None else text[: end.start()]


def first_line_index(text: str, markers: Iterable[str]) -> int | None:
    """Offset of the first line that starts with one of ``markers``."""
    found = _line_start(markers).search(text)
    return None if found is None else found.start()


def cut_quoted(text: str) -> str:
    """The new text of a reply: everything from the first quote header on is dropped."""
    found = _QUOTE_START.search(text)
    kept = text if found is None else text[: found.start()]
    return "\n".join(line.rstrip() for line in kept.splitlines()).strip()


_BANNER = re.compile(
    r"extern(?:en|al)\s+(?:absender|sender)|außerhalb (?:der|unserer) organisation|"
    r"outside (?:of )?(?:the|our) organi[sz]ation|links? (?:oder|or) (?:anhänge|attachments)",
    re.IGNORECASE,
)


def strip_banner(text: str) -> str:
    """Drop a mail gateway's warning banner injected as the first paragraph(s)."""
    paragraphs = re.split(r"\n\s*\n", text.strip("\n"))
    while paragraphs and len(paragraphs[0]) < 600 and _BANNER.search(paragraphs[0]):
        paragraphs.pop(0)
    return "\n\n".join(paragraphs)


def customer_text(text: str) -> str | None:
    """Tidy message text: leading ``:`` removed, banner and quotes cut, blank runs collapsed."""
    body = cut_quoted(strip_banner(text.lstrip(" :\t\n")))
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    return body[:20_000] or None


def split_vehicle(title: str | None) -> tuple[str | None, str | None]:
    """``VW Golf 8 GTI`` -> ``('VW', 'Golf 8 GTI')``; the make is normalised later.

    Two-word makes (``Land Rover``, ``Alfa Romeo``) are tried before one-word
    ones; a title whose first word is no known make is all model.
    """
    words = (clean_line(title) or "").split()
    if not words:
        return None, None
    if len(words) >= 2 and known_make(f"{words[0]} {words[1]}"):
        return f"{words[0]} {words[1]}", " ".join(words[2:]) or None
    if known_make(words[0]):
        return words[0], " ".join(words[1:]) or None
    return None, " ".join(words)


_TITLE_PRICE = re.compile(r"[\s,]+(?:€|EUR)\s?\d|[\s,]+\d[\d.,]*\s?(?:€|EUR)(?!\w)")


def trim_title(title: str) -> str:
    """An ad title without the trailing price or separators the portals append."""
    title = re.split(r"\s(?:€|EUR)\s?\d|\s\d[\d.,]*\s?(?:€|EUR)\b|,\s*\d[\d.]*\s?(?:€|EUR)", title)[
        0
    ]
    return title.strip(" ,-–:\"'„“”")


def price_from(value: str | None) -> float | None:
    """Only ever called with the asking-price label's value, never a rate or trade-in value."""
    return parse_price(value) if value else None


def mileage_from(value: str | None) -> int | None:
    """``98.000 km`` -> ``98000``: thousands separators vary by country, decimals never occur."""
    if not value:
        return None
    found = re.search(r"\d[\d.,'\s\u00a0]*", value)
    digits = re.sub(r"[.,'\s\u00a0]", "", found.group(0)) if found else ""
    return int(digits) if digits.isdigit() else None


def person(name: str | None, salutation: str | None = None) -> CustomerData:
    """A customer with salutation and academic title split off the written name."""
    customer = CustomerData()
    written = clean_line(name)
    if not written:
        customer.salutation = salutation
        return customer
    sal, title, first, last = split_name(written)
    customer.salutation = salutation or sal
    customer.title = title
    customer.first_name = first
    customer.last_name = last
    customer.name = clean_line(" ".join(p for p in (first, last) if p)) or written
    return customer


def display_name(view: MailView, suffixes: Sequence[str]) -> str | None:
    """The customer's display name on a relay ``From``, portal suffix removed."""
    for display, _ in view.from_addresses:
        name = decode_words(display)
        for suffix in suffixes:
            name = re.sub(r"\s*" + re.escape(suffix) + r"\s*$", "", name, flags=re.IGNORECASE)
        name = clean_line(name.strip(" \"'")) or ""
        if name and "@" not in name:
            return name
    return None


def choose_email(
    labelled: str | None,
    view: MailView,
    ctx: ParseContext,
    platform_domains: Sequence[str],
    relay_domains: Sequence[str],
    seller_prefixes: Sequence[str] = (),
) -> str | None:
    """Labelled body address -> non-system Reply-To -> relay ``From`` -> None.

    Platform addresses (no-reply, support) and the dealer's own addresses are
    never the customer.  A relay address in ``From`` forwards to the customer,
    so it is the usable contact when nothing better is present; the seller
    side of a relay (``seller-…``, ``anbieter-…``) is the dealer, not the buyer.
    """

    def acceptable(address: str | None, *, relay_ok: bool) -> str | None:
        match = EMAIL.search(address or "")
        if not match:
            return None
        local, _, domain = match.group(0).rpartition("@")
        found = f"{local}@{domain.lower()}"
        if found.lower() in ctx.dealer_addresses or is_system_address(found):
            return None
        if local.lower().startswith(tuple(seller_prefixes)):
            return None
        if domain_matches(found, platform_domains):
            return found if relay_ok and domain_matches(found, relay_domains) else None
        return found

    candidates = [labelled] + [a for _, a in view.reply_to]
    for candidate in candidates:
        chosen = acceptable(candidate, relay_ok=False)
        if chosen:
            return chosen
    for _, address in view.from_addresses:
        if domain_matches(address, relay_domains):
            chosen = acceptable(address, relay_ok=True)
            if chosen:
                return chosen
    return None


def link_markup(view: MailView) -> str | None:
    """Where a mail's link targets are: the HTML part, else a text part with ``[text](url)`` links.

    A text alternative generated from HTML keeps each link as ``[text](url)``;
    the fields' text has them reduced to their words (:func:`body_text`), so an
    ad's id in a link target or a ``mailto:`` address is looked for here, the
    way it is looked for in the HTML of a mail that has one.
    """
    if view.html:
        return view.html
    if "](" in view.text:
        return view.text
    return None


def mailto_after(markup: str | None, labels: Iterable[str]) -> str | None:
    """The ``mailto:`` address of a link following a label (``Antwoorden op:``).

    ``markup`` is HTML or a text with ``[text](mailto:…)`` links (:func:`link_markup`).
    """
    if not markup:
        return None
    for label in labels:
        found = re.search(
            re.escape(label) + r".{0,600}?mailto:([^\"'>?\s)]+)", markup, re.IGNORECASE | re.DOTALL
        )
        if found:
            return found.group(1)
    return None


def confidence(customer: CustomerData, vehicle: VehicleData, message: str | None) -> float:
    """A specific parser knows the layout; certainty grows with what it actually found."""
    score = 0.5
    if customer.email or customer.phone:
        score += 0.2
    if customer.name:
        score += 0.1
    if vehicle.listing_id or vehicle.model:
        score += 0.1
    if message:
        score += 0.1
    return round(min(score, 1.0), 2)


def platform_lead(
    *,
    parser: str,
    source: str,
    label: str,
    view: MailView,
    subject: str,
    customer: CustomerData,
    vehicle: VehicleData,
    message: str | None,
    inquiry: bool,
) -> ParsedLead:
    """The ParsedLead of a platform mail, shared by the marketplace parsers.

    A mail without customer contact is the platform's own notice (a non-lead
    with a reason) unless it looked like an inquiry, in which case it stays a
    lead candidate with a warning and is quarantined for a human.
    """
    lead = ParsedLead(
        parser=parser,
        source=source,
        kind=detect_kind(" ".join(filter(None, (subject, message)))),
        customer=customer,
        vehicle=vehicle,
        message=message,
        subject=view.subject,
        warnings=list(view.warnings),
    )
    lead.is_lead = customer.has_contact()
    if not lead.is_lead:
        if not inquiry:
            lead.non_lead_reason = f"{label} notice: {subject or 'no subject'}"
        else:
            lead.warnings.append(f"{label} inquiry without a customer e-mail or phone")
    lead.confidence = confidence(customer, vehicle, message) if lead.is_lead else 0.1
    return lead
