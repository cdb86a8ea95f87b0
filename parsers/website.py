"""Dealer website forms: Contact Form 7, TYPO3 powermail / form framework, PHP mailers.

Where it sits: a specific parser in the registry, before the generic fallback
(FORMATS.md section 7).  A website form is recognised by the *mailer*, never by
the words in it: the web server's sender (``wordpress@``, ``www-data@``), the
TYPO3 core's ``X-Mailer: TYPO3`` header, PHP's ``X-PHP-Originating-Script``,
the Contact Form 7 footer, or powermail's label-in-``<b>`` table.  The data is
a labelled list, so extraction is the generic one plus the form specifics:
CF7's ``From: name <address>`` body line, powermail's marketing table (not
customer data), and a customer address that may stand anywhere in free text.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .fields import EMAIL_PATTERN, is_dealer_address, is_system_address
from .generic import customer_text, extract, phone_in_text
from .message import MailView, clean_line
from .model import ParsedLead
from .normalize import split_name
from .signals import domain_of

NAME = "website"

# Local parts only a web server or CMS sends from.
_WEBSERVER_SENDERS = frozenset(
    {"wordpress", "www-data", "wwwrun", "apache", "nginx", "httpd", "php", "typo3", "joomla"}
)
_CF7_FOOTER = re.compile(
    r"(?i)(?:this e-?mail was sent from a contact form on|diese e-?mail wurde (?:von|über) "
    r"(?:einem|das|ein) kontaktformular|deze e-?mail is verzonden via een contactformulier"
    r"|cet e-?mail a été envoyé depuis un formulaire de contact)"
)
_MARKETING = re.compile(
    r"(?im)^[ \t]*(?:marketing[ -]?informationen?|marketing information)[ \t:]*$"
)
# Contact Form 7's default body: "From: name <address>" (German "Von:").
_CF7_FROM = re.compile(
    r"(?im)^[ \t]*(?:from|von|van|de)[ \t]*:[ \t]*(.*?)[ \t]*<([^<>\s]+@[^<>\s]+)>"
)
# WordPress core notices come from the same wordpress@ sender as the forms.
_WP_NOTICE = re.compile(
    r"(?i)^\[[^\]]{1,120}\]\s*(?:please moderate|bitte moderiere|new comment|neuer kommentar"
    r"|comment:|kommentar:|new user registration|neue benutzerregistrierung|password reset"
    r"|passwort zurücksetzen|password changed|passwort geändert|your site has updated"
    r"|deine website wurde|some plugins|einige plugins|your site is experiencing"
    r"|deine website hat ein technisches problem|ihre website hat ein technisches problem"
    r"|admin email|e-mail-adresse des administrators|background update|automatische aktualisierung)"
)
_COMPANY_WORDS = re.compile(
    r"(?i)\b(?:autohaus|gmbh|ag|kg|website|web|formular|form|contact|kontakt|wordpress|service"
    r"|team|auto|autos|autobedrijf|garage|automobile?|autocenter|fahrzeuge|kfz|cars|motors|garage|shop|center|zentrum|handel|group|gruppe|typo3)\b"
)
_CLOSING = re.compile(
    r"(?i)^\s*(?:mit freundlichen grü(?:ß|ss)en|freundliche grü(?:ß|ss)e|viele grü(?:ß|ss)e|beste "
    r"grü(?:ß|ss)e|liebe grü(?:ß|ss)e|grü(?:ß|ss)e|gru(?:ß|ss)|mfg|lg|vg|best regards|kind regards"
    r"|regards|best|cheers|met vriendelijke groet(?:en)?|groeten|groet|cordialement|bien à vous"
    r"|salutations)[ ,.!]*$"
)


def matches(view: MailView) -> bool:
    """A form mail: web-server sender, TYPO3/PHP mailer header or the CF7 footer."""
    senders = [a for _, a in view.from_addresses]
    sender = view.header("Sender")
    if sender:
        senders += EMAIL_PATTERN.findall(sender)
    if any(a.partition("@")[0].lower() in _WEBSERVER_SENDERS for a in senders):
        return True
    if "typo3" in (view.header("X-Mailer") or "").lower():
        return True
    if view.header("X-PHP-Originating-Script") or view.header("X-PHP-Script"):
        return True
    # A bold-label table alone is no signal: OEM lead systems send the same markup.
    # powermail is TYPO3 (X-Mailer above); without that header generic reads the table.
    return bool(_CF7_FOOTER.search(view.text[-3000:]))


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    if _WP_NOTICE.match(view.subject or ""):
        return ParsedLead(
            parser=NAME,
            source="website",
            subject=view.subject,
            warnings=list(view.warnings),
            non_lead_reason="website housekeeping: WordPress notice",
        )
    text = view.text
    marketing = _MARKETING.search(text)
    if marketing:
        text = text[: marketing.start()]
    extra: dict[str, str] = {}
    cf7 = _CF7_FROM.search(text)
    if cf7:
        name, address = clean_line(cf7.group(1)) or "", cf7.group(2)
        if not is_dealer_address(address, ctx.dealer_addresses):
            extra["email"] = address
        if name and not EMAIL_PATTERN.search(name):
            extra["name"] = name.strip('"')
        text = text[: cf7.start()] + text[cf7.end() :]
    lead = extract(
        view,
        ctx,
        parser=NAME,
        source="website",
        text=text,
        extra=extra,
        from_is_customer=_from_may_be_customer(view),
    )
    customer = lead.customer
    if not customer.email:
        customer.email = _address_in_text(text, view, ctx)
    if not customer.phone:
        customer.phone = phone_in_text(customer_text(text) or "")
    if not customer.name:
        name = signature_name(text) or _person_display(view)
        if name:
            _set_name(lead, name)
    lead.is_lead = customer.has_contact()
    lead.warnings = [w for w in lead.warnings if "no customer e-mail" not in w]
    if not lead.is_lead:
        lead.warnings.append("no customer e-mail address or phone number found")
        lead.confidence = 0.1
    else:
        found_count = sum(
            1 for v in (customer.name, customer.email, customer.phone, lead.message) if v
        )
        lead.confidence = round(min(1.0, 0.35 + 0.15 * found_count), 2)
    return lead


def _set_name(lead: ParsedLead, name: str) -> None:
    salutation, title, first, last = split_name(name)
    customer = lead.customer
    customer.salutation = customer.salutation or salutation
    customer.title = customer.title or title
    customer.first_name, customer.last_name = first, last
    customer.name = clean_line(" ".join(p for p in (first, last) if p)) or name


def _from_may_be_customer(view: MailView) -> bool:
    """Powermail sends with the customer's address in From; a site mailer with its own.

    The site's own domains show in Message-ID, Return-Path and To; a From at
    one of them is the website, not the customer.
    """
    site: set[str] = set()
    for name in ("Message-ID", "Return-Path", "To", "Sender"):
        site.update(domain_of(a) for a in EMAIL_PATTERN.findall(view.header(name) or ""))
    mid = re.search(r"@([\w.-]+)>?\s*$", view.header("Message-ID") or "")
    if mid:
        site.add(mid.group(1).lower())
    for _, address in view.from_addresses:
        domain = domain_of(address)
        if any(domain == s or domain.endswith("." + s) or s.endswith("." + domain) for s in site):
            return False
    return True


def _address_in_text(text: str, view: MailView, ctx: ParseContext) -> str | None:
    """An unlabelled address in a free-text form mail: the first that is not the site's."""
    own = {domain_of(a) for _, a in view.from_addresses}
    for address in EMAIL_PATTERN.findall(customer_text(text) or ""):
        if is_dealer_address(address, ctx.dealer_addresses) or is_system_address(address):
            continue
        if domain_of(address) in own:
            continue
        local, _, domain = address.rpartition("@")
        return f"{local}@{domain.lower()}"
    return None


def signature_name(text: str) -> str | None:
    """The name under a closing formula ("Viele Grüße\\nPeter Lustig"), if it looks like one."""
    lines = [line.strip() for line in (customer_text(text) or "").splitlines()]
    for index, line in enumerate(lines):
        if not _CLOSING.match(line):
            continue
        for candidate in lines[index + 1 : index + 3]:
            if candidate and _looks_like_person(candidate):
                return candidate
    return None


def _person_display(view: MailView) -> str | None:
    """Older CF7 installs send as ``[your-name] <wordpress@site>``: a person's display name."""
    for display, _ in view.reply_to + view.from_addresses:
        if display and _looks_like_person(display):
            return display
    return None


def _looks_like_person(value: str) -> bool:
    words = value.split()
    if not 2 <= len(words) <= 5 or any(ch.isdigit() for ch in value) or "@" in value:
        return False
    return not _COMPANY_WORDS.search(value) and all(w[0].isalpha() for w in words)
