"""Layer 3, the scanners: phone, e-mail, VIN, ids and price in the customer's own words.

Run only for fields still empty; a free-form mail is scanned whole, a platform
mail only in the message.  A national phone number is read in the country of
the mail it came in (the customer's or the portal's domain) before the dealer's.
"""

from __future__ import annotations

from . import scanners
from .context import ParseContext
from .fields import is_dealer_address
from .merge import FREE_FORM_SOURCES, SCANNER, SOURCE, digits, e164, offer_value
from .message import MailView
from .model import Loser, ParsedLead
from .normalize import parse_price

# a VIN is written next to one of these words (plain substring tests: cheap on long mails)
_VIN_WORDS = (
    "fin:",
    "fin ",
    "vin:",
    "vin ",
    "vin#",
    "fahrgestell",
    "chassis",
    "telaio",
    "identifi",
)


def _names_a_vin(text: str) -> bool:
    lowered = text[: scanners.FIELD_SCAN_CHARS].lower()
    return any(word in lowered for word in _VIN_WORDS)


def scan(lead: ParsedLead, text: str, subject: str | None, ctx: ParseContext) -> None:
    free_form = lead.source in FREE_FORM_SOURCES
    own_words = lead.message or ""
    whole = text if free_form else own_words
    if not lead.customer.phone:
        taken = {digits(v) for v in (lead.vehicle.listing_id, lead.vehicle.stock_number) if v}
        for where, text in (("message", own_words), ("text", whole)):
            hit = next(
                (h for h in scanners.phones(text, ctx.region) if digits(h.value) not in taken),
                None,
            )
            if hit:
                offer_value(lead, "customer.phone", hit.value, SCANNER, f"{where}: {hit.context!r}")
                break
    if not lead.customer.email and own_words:
        for hit in scanners.emails(own_words):
            if not is_dealer_address(hit.value, ctx.dealer_addresses):
                offer_value(lead, "customer.email", hit.value, SCANNER, f"message: {hit.context!r}")
                break
    if not lead.vehicle.vin and _names_a_vin(text):
        hit = next(iter(scanners.vins(text)), None)
        if hit:
            offer_value(lead, "vehicle.vin", hit.value, SCANNER, f"text: {hit.context!r}")
    # a source parser may leave "(Nr. 4711)" in the model it took from a title (finalize
    # drops it there), so the model is scanned too
    model = lead.vehicle.model
    prose = "\n".join(filter(None, (subject, model, whole[: scanners.FIELD_SCAN_CHARS])))
    if not lead.vehicle.stock_number:
        hit = next(iter(scanners.stock_numbers(prose)), None)
        if hit:
            offer_value(lead, "vehicle.stock_number", hit.value, SCANNER, f"text: {hit.context!r}")
    if not lead.vehicle.listing_id:
        hit = next(iter(scanners.listing_ids(f"{subject or ''}\n{text}")), None)
        if hit:
            offer_value(lead, "vehicle.listing_id", hit.value, SCANNER, f"text: {hit.context!r}")
    if lead.vehicle.price is None:
        hit = next(iter(scanners.prices(prose)), None)
        if hit:
            offer_value(
                lead, "vehicle.price", parse_price(hit.value), SCANNER, f"text: {hit.context!r}"
            )


# country-code top-level domains whose numbering plan a national number may follow
_TLD_REGIONS = {
    "at": "AT",
    "be": "BE",
    "ch": "CH",
    "nl": "NL",
    "fr": "FR",
    "it": "IT",
    "es": "ES",
    "lu": "LU",
    "pl": "PL",
    "dk": "DK",
    "se": "SE",
    "cz": "CZ",
    "uk": "GB",
    "ie": "IE",
    "pt": "PT",
    "li": "LI",
    "de": "DE",
}


def phone_country(lead: ParsedLead, view: MailView, ctx: ParseContext) -> None:
    """A national number ("0664 …", "06 …") in a mail from another country's portal or
    customer is that country's: the customer's address domain, then the sender's, decide
    before the dealer's own region."""
    phone = lead.customer.phone
    if not phone or phone.lstrip().startswith(("+", "00")):
        return
    regions: list[str] = []
    addresses = [lead.customer.email or ""] + [a for _, a in view.reply_to + view.from_addresses]
    for address in addresses:
        tld = address.rpartition(".")[2].lower()
        region = _TLD_REGIONS.get(tld)
        if region and region not in regions:
            regions.append(region)
    if not regions or regions[0] == ctx.region.upper():
        return
    for region in regions:
        number = _valid_in(phone, region)
        if number:
            if number != e164(phone):
                lead.customer.phone_e164 = number
                lead.losers.setdefault("customer.phone", []).append(
                    Loser(SOURCE, f"read in {ctx.region}", str(e164(phone)), f"a {region} mail")
                )
            return


def _valid_in(phone: str, region: str) -> str | None:
    import phonenumbers

    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
