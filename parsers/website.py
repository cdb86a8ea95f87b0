"""Dealer website forms: form plugins, form services, TYPO3, PHP mailers, any form mail.

Where it sits: a specific parser in the registry, before the generic fallback
(FORMATS.md section 7).  A website form is recognised by evidence about the
*mailer and the shape*, never by a customer's words:

- the web server's sender (``wordpress@``, ``www-data@``, also in
  ``Return-Path``), the TYPO3 core's ``X-Mailer: TYPO3`` header, PHP's
  ``X-PHP-Originating-Script``;
- a form builder's signature (the Contact Form 7 footer, "Powered by
  WPForms", Elementor's meta block ...) or a form service's own domain (Wix,
  Jimdo, HubSpot, Squarespace, Webflow, Jotform, Typeform ...);
- the dealer's own site: a system sender (``noreply@``, ``formular@``) or a
  form-shaped mail (a labelled contact block) from the registrable domain the
  mail was addressed to -- a site sends its form mails to its own domain;
- form wording ("Kontaktformular", "form submission") above a labelled
  contact block, from a domain that is no known portal.

The data is a labelled list, so extraction is the generic one plus the form
specifics: CF7's ``From: name <address>`` body line, powermail's marketing
table and a form builder's meta block (not customer data), and a customer
address that may stand anywhere in free text.
"""

from __future__ import annotations

import re

from .context import DEFAULT_CONTEXT, ParseContext
from .fields import EMAIL_PATTERN, FREEMAIL_DOMAINS, is_dealer_address, is_system_address
from .gate import gated
from .generic import customer_text, extract, phone_in_text
from .lexicon import field_of, starts_like_label
from .message import MailView, clean_line
from .model import ParsedLead
from .normalize import split_name
from .signals import domain_of, platform_of, recipient_domains, registrable_domain

NAME = "website"

# Local parts only a web server or CMS sends from.
_WEBSERVER_SENDERS = frozenset(
    {"wordpress", "www-data", "wwwrun", "apache", "nginx", "httpd", "php", "typo3", "joomla"}
)
_CF7_FOOTER = gated(
    r"(?i)(?:this e-?mail was sent from a contact form on|diese e-?mail wurde (?:von|über) "
    r"(?:einem|das|ein) kontaktformular|deze e-?mail is verzonden via een contactformulier"
    r"|cet e-?mail a été envoyé depuis un formulaire de contact)",
    ("form",),
)
_MARKETING = re.compile(
    r"(?im)^[ \t]*(?:marketing[ -]?informationen?|marketing information)[ \t:]*$"
)
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "microsoftexchange"})
# Form builders sign their notification mails; nothing else writes these lines.
_BUILDER_SIGNATURE = re.compile(
    r"(?im)^[ \t]*(?:powered by|bereitgestellt von|gesendet mit|sent with|sent via|erstellt mit"
    r"|gemaakt met|propulsé par)\s*:?\s*(?:wpforms|gravity ?forms|elementor|fluent ?forms"
    r"|ninja ?forms|formidable(?: forms)?|forminator|everest forms|caldera forms|contact form 7"
    r"|jotform|typeform|hubspot|wix|jimdo|webflow|squarespace|formspree)\b"
)
# Form services that mail a site's submissions from their own domains.
_FORM_SERVICES = frozenset(
    {
        "wix.com",
        "wixforms.com",
        "jimdo.com",
        "hubspot.com",
        "hubspotemail.net",
        "squarespace.info",
        "squarespace.com",
        "webflow.com",
        "jotform.com",
        "typeform.com",
        "formspree.io",
        "wufoo.com",
        "cognitoforms.com",
        "formstack.com",
        "123formbuilder.com",
        "tally.so",
        "paperform.co",
        "getform.io",
        "basin.com",
    }
)
# Vehicle portals without a parser of their own: their mails are form-shaped too,
# but they are portals (source "unknown"), not the dealer's website.
_PORTALS = frozenset(
    {
        "pkw.de",
        "autohaus24.de",
        "heycar.de",
        "heycar.com",
        "hey.car",
        "autouncle.de",
        "autouncle.com",
        "carwow.de",
        "carwow.co.uk",
        "gaspedaal.nl",
        "marktplaats.nl",
        "2dehands.be",
        "willhaben.at",
        "autotrader.co.uk",
        "autotrader.nl",
        "cargurus.de",
        "cargurus.com",
        "leasingmarkt.de",
        "autobild.de",
        "instamotion.com",
        "meinauto.de",
        "carsale24.de",
        "autoanzeigen.de",
    }
)
# Senders that are services, never a customer (see generic.system_sent).
SYSTEM_DOMAINS = _FORM_SERVICES | _PORTALS
_FORM_WORDS = gated(
    r"(?i)(?:kontakt-?formular|contact ?form|formulareinsendung|formulareinreichung|form submission"
    r"|neue einsendung|new submission|neuer eintrag|web-?formular|online-?formular"
    r"|contactformulier|formulaire de contact|\bformular\b)",
    ("form", "einsendung", "submission", "eintrag"),
)
_SITE_LOCAL = re.compile(
    r"^(?:kontakt|contact|anfragen?|inquir(?:y|ies)|enquir(?:y|ies)|termin|service-?termin"
    r"|werkstatt-?termin|probefahrt|finanzierung|finanzrechner|rueckruf|callback|formulare?"
    r"|webforms?|site|homepage|online)(?:[-_.+][\w.+-]*)?$"
)
_SHAPE_CHARS = 8000
# Elementor's (and similar plugins') submission meta data below a "---" line.
_META_BLOCK = re.compile(
    r"(?im)^[ \t]*-{3,}[ \t]*\n(?:[ \t]*\n)*(?=[ \t]*(?:datum|date|zeit|time|seiten-url"
    r"|page url|user agent|remote ip|ip-adresse)[ \t]*:)"
)
_SERVICES = r"(?:wix(?:\.com)?|jotform|hubspot|webflow|typeform|squarespace|jimdo|wpforms)"
_CHROME_LINE = re.compile(
    r"(?im)^[^\n]{0,120}\b" + _SERVICES + r"\b[^\n]{0,200}$"
    r"|^[ \t]*(?:powered by|bereitgestellt von|gesendet mit|sent from|sent with|sent via)"
    r"\b[^\n]{0,80}$"
    r"|^[ \t]*(?:einreichung|einsendung|antwort|eintrag|submission|response|entry|kontakt)"
    r"(?: in \w+)? (?:ansehen|anzeigen|view)\b[^\n]{0,80}$"
    r"|^[ \t]*view (?:submission|response|entry|contact)\b[^\n]{0,80}$"
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
    """A form mail, by mailer evidence or by shape (see the module docstring)."""
    if view.message.get_content_type() == "multipart/report":
        return False  # a delivery report quotes a form mail; it is none
    senders = _sender_addresses(view)
    if any(a.partition("@")[0].lower() in _DAEMONS for a in senders):
        return False
    if any(a.partition("@")[0].lower() in _WEBSERVER_SENDERS for a in senders):
        return True
    if "typo3" in (view.header("X-Mailer") or "").lower():
        return True
    if view.header("X-PHP-Originating-Script") or view.header("X-PHP-Script"):
        return True
    # A bold-label table alone is no signal: OEM lead systems send the same markup.
    # powermail is TYPO3 (X-Mailer above); without that header the shape decides.
    tail = view.text[-3000:]
    if _CF7_FOOTER.search(tail) or _BUILDER_SIGNATURE.search(tail):
        return True
    organisations = {registrable_domain(domain_of(a)) for a in senders}
    if organisations & _FORM_SERVICES:
        return True
    if any(platform_of(a) for a in senders) or organisations & _PORTALS:
        return False
    own_site = organisations & (recipient_domains(view) - FREEMAIL_DOMAINS)
    if own_site and any(_site_sender(a) for a in senders if _at(a, own_site)):
        return True
    if own_site and any(_FORM_WORDS.search(d) for d, a in view.from_addresses if _at(a, own_site)):
        return True
    if not _form_shaped(view.text):
        return False
    return bool(own_site and not _person_sender(view, own_site)) or bool(
        _FORM_WORDS.search(view.subject or "") or _FORM_WORDS.search(view.text[:3000])
    )


def _sender_addresses(view: MailView) -> list[str]:
    """From, Sender, Return-Path and the Message-ID's domain: where the mail was made."""
    found = [a for _, a in view.from_addresses]
    for name in ("Sender", "Return-Path"):
        found += EMAIL_PATTERN.findall(view.header(name) or "")
    mid = re.search(r"@([\w.-]+)>?\s*$", view.header("Message-ID") or "")
    if mid:
        found.append(f"message-id@{mid.group(1)}")  # where, not who: never a site sender alone
    return found


def _site_sender(address: str) -> bool:
    """A mailbox a web site sends from (``noreply@``, ``formular@``, ``anfrage@``)."""
    local = address.partition("@")[0].lower()
    if local == "message-id":
        return False
    return is_system_address(address) or bool(_SITE_LOCAL.match(local))


def _at(address: str, organisations: set[str]) -> bool:
    return registrable_domain(domain_of(address)) in organisations


def _form_shaped(text: str) -> bool:
    """A labelled block with a way to reach someone: what every form mailer writes.

    Counted on ``Label: value`` lines and bare label lines with the lexicon
    alone -- cheap enough for every mail that reaches this parser; the full
    reader runs only in :func:`parse`.
    """
    keys: set[str] = set()
    for line in text[:_SHAPE_CHARS].splitlines():
        head = line.strip()
        if not head or len(head) > 300:
            continue
        label = head.partition(":")[0] if ":" in head else head
        if len(label) <= 40 and starts_like_label(label):
            key = field_of(label.strip(" \t*•-=>[]"))
            if key:
                keys.add(key)
    contact = {"email", "phone"} & keys
    person = {"name", "first_name", "last_name"} & keys
    return bool(contact) and bool(person or "message" in keys) and len(keys) >= 3


def _person_sender(view: MailView, own_site: set[str]) -> bool:
    """An employee writing from the dealer's domain: a person's name, a personal address.

    A person's From at another domain is a customer (powermail sends with the
    customer's address); only a person *at the site's own domain* is staff.
    """
    for display, address in view.from_addresses:
        if not _at(address, own_site) or is_system_address(address):
            continue
        local = address.partition("@")[0]
        if (display and _looks_like_person(display)) or "." in local:
            return True
    return False


def parse(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    if _WP_NOTICE.match(view.subject or ""):
        return ParsedLead(
            parser=NAME,
            source="website",
            subject=view.subject,
            warnings=list(view.warnings),
            non_lead_reason="website housekeeping: WordPress notice",
        )
    text = without_form_chrome(view.text)
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


def without_form_chrome(text: str) -> str:
    """The form's fields without what the form builder adds: meta block, signature, links.

    Elementor appends "---" and the date, page URL, user agent and IP of the
    submission; form services sign with their company line and a "view
    submission" link.  None of it is customer data, and in the message it
    would be mistaken for the customer's words.
    """
    meta = _META_BLOCK.search(text)
    if meta:
        text = text[: meta.start()]
    return _CHROME_LINE.sub("", text)


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
    """Older CF7 installs send as ``[your-name] <wordpress@site>``: a person's display name.

    A form service's own display name ("Wix Forms") is no person, however it looks.
    """
    for display, address in view.reply_to + view.from_addresses:
        if registrable_domain(domain_of(address)) in SYSTEM_DOMAINS:
            continue
        if display and _looks_like_person(display) and not _FORM_WORDS.search(display):
            return display
    return None


def _looks_like_person(value: str) -> bool:
    words = value.split()
    if not 2 <= len(words) <= 5 or any(ch.isdigit() for ch in value) or "@" in value:
        return False
    return not _COMPANY_WORDS.search(value) and all(w[0].isalpha() for w in words)
