"""finalize: whatever a parser produced, the contract's guarantees hold."""

from __future__ import annotations

from mailgate.parsers import ParseContext
from mailgate.parsers.finish import finalize
from mailgate.parsers.model import CustomerData, ParsedLead, VehicleData

CTX = ParseContext(dealer_addresses=frozenset({"leads@autohaus-beispiel.example"}), region="AT")


def test_fields_are_single_line_plain_text_and_normalised() -> None:
    lead = ParsedLead(
        parser="x",
        source="oem:Opel",  # not a valid slug
        kind="probefahrt",
        customer=CustomerData(
            name="Eve <b>Bold</b>\r\nBcc: x@y.example",
            email="Verkauf@Autohaus-Beispiel.example",
            phone="0664 1234567",
        ),
        vehicle=VehicleData(make="vw", vin="wvw zzz1kzaw000001 ", price=-5.0),
        message="<p>Hallo<br>Welt</p><script>x()</script>",
        confidence=3.0,
    )
    finalize(lead, CTX)
    assert lead.customer.name == "Eve Bold Bcc: x@y.example"
    assert lead.customer.email is None  # the dealer's own domain is never the customer
    assert lead.customer.phone_e164 == "+436641234567"  # Austrian mobile, dealer region AT
    assert lead.vehicle.make == "Volkswagen" and lead.vehicle.vin == "WVWZZZ1KZAW000001"
    assert lead.vehicle.price is None
    assert lead.message == "Hallo\nWelt"
    assert (lead.source, lead.kind, lead.confidence) == ("unknown", "other", 1.0)
    assert any("unknown source" in w for w in lead.warnings)
