"""Find an ADF/XML 1.0 document in a mail and read it safely into plain data.

ADF documents arrive in every shape the generators produce: the legacy
``<?ADF VERSION "1.0"?>`` / ``<?XML VERSION "1.0"?>`` processing instructions
(not well-formed XML), the ADF instruction before the XML declaration, blank
lines or indentation before ``<?xml``, HTML-escaped inside an HTML body,
unquoted attribute values, bare ``&`` in comments, upper-case element names.
So the document is located by its ``<adf>`` root element and everything before
the root except a DOCTYPE is dropped, which makes every odd prologue harmless.

The DOCTYPE is kept on purpose: it is the only place an entity bomb or an
external entity can be declared, and :mod:`defusedxml` refuses those with a
clear error instead of expanding them or reading a file.  Nothing here does I/O.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element  # nosec B405  # type only; parsing uses defusedxml

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MAX_DOCUMENT_CHARS = 1_000_000
MAX_DOCTYPE_CHARS = 64 * 1024

_ROOT_START = re.compile(r"<adf\b", re.IGNORECASE)
_ROOT_END = re.compile(r"</adf\s*>", re.IGNORECASE)
_ESCAPED_ROOT = re.compile(r"&lt;adf\b", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!DOCTYPE\b[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)
_UNQUOTED_ATTR = re.compile(r"(\s[A-Za-z_][\w:.-]*)\s*=\s*([^\s\"'<>=/]+)")
_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_BARE_AMP = re.compile(r"&(?!(?:[A-Za-z][\w.-]*|#\d+|#x[0-9A-Fa-f]+);)")
_CDATA = re.compile(r"(<!\[CDATA\[.*?\]\]>)", re.DOTALL)
_XML_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


class AdfError(ValueError):
    """The ADF document could not be read; the message says why, for the warnings."""


def contains_adf(text: str | None) -> bool:
    """Cheap check: an ``<adf`` root (plain or HTML-escaped) appears in ``text``."""
    if not text:
        return False
    return bool(_ROOT_START.search(text) or _ESCAPED_ROOT.search(text))


def extract_document(text: str) -> str | None:
    """The ``<adf>…</adf>`` document in ``text`` (with any DOCTYPE before it), or None.

    HTML-escaped documents (``&lt;adf&gt;`` in an HTML body) are unescaped
    first; the caller passes HTML bodies with their tags removed.
    """
    if not _ROOT_START.search(text) and _ESCAPED_ROOT.search(text):
        text = html.unescape(text)
    start = _ROOT_START.search(text)
    if start is None:
        return None
    ends = list(_ROOT_END.finditer(text, start.end()))
    end = ends[-1].end() if ends else len(text)
    document = text[start.start() : end]
    doctype = _last_doctype(text, start.start())
    if doctype:
        document = doctype + "\n" + document
    return document


def _last_doctype(text: str, root_start: int) -> str | None:
    """The DOCTYPE right before the root, found with one bounded regex match (no rescans)."""
    window_start = max(0, root_start - MAX_DOCTYPE_CHARS)
    position = text.lower().rfind("<!doctype", window_start, root_start)
    if position < 0:
        return None
    match = _DOCTYPE.match(text, position, root_start)
    return match.group(0) if match else text[position:root_start]


def decode_xml_bytes(payload: bytes, charset: str | None) -> str:
    """An XML attachment as text: BOM, else the declared encoding, else the MIME charset."""
    if payload.startswith(b"\xef\xbb\xbf"):
        return payload[3:].decode("utf-8", "replace")
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        return payload.decode("utf-16", "replace")
    declared = _XML_ENCODING.search(payload[:300])
    for candidate in (declared.group(1).decode() if declared else None, charset, "utf-8"):
        if not candidate:
            continue
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("windows-1252", "replace")


def parse_document(document: str) -> tuple[Element, list[str]]:
    """The parsed ``<adf>`` root and notes about repairs; raises :class:`AdfError`.

    A strict parse comes first; if that fails, unquoted attribute values and
    bare ampersands are repaired and the parse is retried once.  Declared
    entities and external references are refused, never expanded or fetched.
    """
    if len(document) > MAX_DOCUMENT_CHARS:
        raise AdfError(f"ADF document larger than {MAX_DOCUMENT_CHARS} characters: not parsed")
    notes: list[str] = []
    try:
        return _normalise(SafeET.fromstring(document)), notes
    except DefusedXmlException as exc:
        raise AdfError(
            "ADF document refused: it declares entities or external references "
            f"({type(exc).__name__}; possible XXE or entity-expansion attack), not parsed"
        ) from exc
    except SafeET.ParseError as exc:
        first_error = str(exc)
    repaired = _repair(document)
    try:
        root = _normalise(SafeET.fromstring(repaired))
    except DefusedXmlException as exc:  # pragma: no cover - the strict parse refuses first
        raise AdfError(f"ADF document refused: {type(exc).__name__}") from exc
    except SafeET.ParseError as exc:
        raise AdfError(f"ADF document is not well-formed XML: {exc}") from exc
    notes.append(f"ADF document repaired before parsing ({first_error})")
    return root, notes


def _repair(document: str) -> str:
    """Quote bare attribute values and escape bare ``&`` outside CDATA sections."""
    pieces = _CDATA.split(document)
    for index in range(0, len(pieces), 2):  # odd indexes are the CDATA sections
        piece = _TAG.sub(lambda m: _UNQUOTED_ATTR.sub(r'\1="\2"', m.group(0)), pieces[index])
        pieces[index] = _BARE_AMP.sub("&amp;", piece)
    return "".join(pieces)


def _normalise(root: Element) -> Element:
    """Lower-case tag and attribute names and drop namespaces: generators disagree on case."""
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = element.tag.rsplit("}", 1)[-1].lower()
        if element.attrib:
            element.attrib = {k.lower(): v.strip() for k, v in element.attrib.items()}
    return root


# --- reading the document ------------------------------------------------------


@dataclass
class AdfContact:
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    business: bool = False
    emails: list[str] = field(default_factory=list)
    phones: list[tuple[str, str]] = field(default_factory=list)  # (type, number)
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None


@dataclass
class AdfFinance:
    method: str | None = None
    amounts: dict[str, str] = field(default_factory=dict)  # type -> amount as written


@dataclass
class AdfVehicle:
    interest: str = "buy"
    status: str | None = None
    year: str | None = None
    make: str | None = None
    model: str | None = None
    trim: str | None = None
    vin: str | None = None
    stock: str | None = None
    ids: list[str] = field(default_factory=list)
    odometer: str | None = None
    odometer_units: str | None = None
    prices: list[tuple[str, str]] = field(default_factory=list)  # (type, amount)
    finance: AdfFinance | None = None
    comments: str | None = None


@dataclass
class AdfProspect:
    lead_ids: list[str] = field(default_factory=list)
    request_date: str | None = None
    vehicles: list[AdfVehicle] = field(default_factory=list)
    customer: AdfContact = field(default_factory=AdfContact)
    customer_comments: str | None = None
    vendor_name: str | None = None
    vendor_contact: AdfContact | None = None
    provider_name: str | None = None
    provider_contact: AdfContact | None = None
    finance: AdfFinance | None = None
    other_prospects: int = 0


def read_prospect(root: Element) -> AdfProspect:
    """The first ``<prospect>`` of a parsed ``<adf>`` root as plain data."""
    prospects = root.findall("prospect") if root.tag == "adf" else []
    if not prospects and root.tag == "prospect":
        prospects = [root]
    if not prospects:
        raise AdfError("ADF document has no <prospect>")
    node = prospects[0]
    prospect = AdfProspect(other_prospects=len(prospects) - 1)
    prospect.lead_ids = [t for t in (_text(e) for e in node.findall("id")) if t]
    prospect.request_date = _text(node.find("requestdate"))
    prospect.vehicles = [_vehicle(v) for v in node.findall("vehicle")]
    customer = node.find("customer")
    if customer is not None:
        contact = customer.find("contact")
        prospect.customer = _contact(contact if contact is not None else customer)
        prospect.customer_comments = _comment(customer.find("comments"))
    vendor = node.find("vendor")
    if vendor is not None:
        prospect.vendor_name = _text(vendor.find("vendorname"))
        contact = vendor.find("contact")
        prospect.vendor_contact = _contact(contact) if contact is not None else None
    provider = node.find("provider")
    if provider is not None:
        name = provider.find("name")
        prospect.provider_name = _text(name) if name is not None else None
        contact = provider.find("contact")
        prospect.provider_contact = _contact(contact) if contact is not None else None
    finance = node.find("finance")
    if finance is not None:
        prospect.finance = _finance(finance)
    return prospect


def _text(element: Element | None) -> str | None:
    if element is None:
        return None
    value = " ".join("".join(element.itertext()).split())
    value = value.strip().strip("\"'").strip()
    return value or None


def _comment(element: Element | None) -> str | None:
    """Free text with its line breaks; generators wrap it in stray quotes."""
    if element is None:
        return None
    lines = [" ".join(line.split()) for line in "".join(element.itertext()).splitlines()]
    value = "\n".join(lines).strip().strip("\"'").strip()
    return value or None


def _contact(node: Element) -> AdfContact:
    contact = AdfContact()
    first: list[str] = []
    for name in node.findall("name"):
        value = _text(name)
        if not value:
            continue
        part = name.get("part", "full").lower()
        if name.get("type", "").lower() == "business":
            contact.business = True
        if part in ("first", "middle"):
            first.append(value)
        elif part in ("last", "surname"):
            contact.last_name = contact.last_name or value
        elif part == "full" or not contact.full_name:
            contact.full_name = contact.full_name or value
    contact.first_name = " ".join(first) or None
    contact.emails = [t for t in (_text(e) for e in node.findall("email")) if t]
    for phone in node.findall("phone"):
        number = _text(phone)
        if number:
            contact.phones.append((phone.get("type", "voice").lower(), number))
    for tag in ("cellphone", "mobile", "international_phone"):
        for phone in node.findall(tag):
            number = _text(phone)
            if number:
                contact.phones.append(("cellphone", number))
    address = node.find("address")
    if address is not None:
        lines = [t for t in (_text(s) for s in address.findall("street")) if t]
        contact.street = ", ".join(lines) or None
        contact.postcode = _text(address.find("postalcode"))
        contact.city = _text(address.find("city"))
        contact.country = _text(address.find("country"))
    return contact


def _finance(node: Element) -> AdfFinance:
    finance = AdfFinance(method=(_text(node.find("method")) or "").lower() or None)
    for amount in node.findall("amount"):
        value = _text(amount)
        if value:
            finance.amounts.setdefault(amount.get("type", "total").lower(), value)
    return finance


def _vehicle(node: Element) -> AdfVehicle:
    vehicle = AdfVehicle(
        interest=(node.get("interest") or "buy").lower(),
        status=(node.get("status") or "").lower() or None,
        year=_text(node.find("year")),
        make=_text(node.find("make")),
        model=_text(node.find("model")),
        trim=_text(node.find("trim")),
        vin=_text(node.find("vin")),
        stock=_text(node.find("stock")),
        comments=_comment(node.find("comments")),
    )
    vehicle.ids = [t for t in (_text(e) for e in node.findall("id")) if t]
    odometer = node.find("odometer")
    if odometer is not None:
        vehicle.odometer = _text(odometer)
        vehicle.odometer_units = (odometer.get("units") or "").lower() or None
    for price in node.findall("price"):
        value = _text(price)
        if value:
            vehicle.prices.append(((price.get("type") or "quote").lower(), value))
    finance = node.find("finance")
    if finance is not None:
        vehicle.finance = _finance(finance)
    return vehicle
