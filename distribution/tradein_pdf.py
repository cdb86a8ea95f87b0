"""The trade-in CC's PDF: the core data of a trade-in request plus a link to the lead.

Built with fpdf2's core Helvetica, which covers Latin-1 (German umlauts, ß);
anything outside it is replaced rather than failing the whole forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABELS = {
    "de": {
        "title": "Inzahlungnahme",
        "customer": "Kunde",
        "vehicle": "Fahrzeug zur Inzahlungnahme",
        "message": "Nachricht",
        "link": "Vollständige Anfrage in mailgate",
        "received": "Eingegangen",
        "none": "(keine Angaben)",
        "fields": {
            "name": "Name",
            "email": "E-Mail",
            "phone": "Telefon",
            "street": "Straße",
            "postcode": "PLZ",
            "city": "Ort",
            "make": "Marke",
            "model": "Modell",
            "vin": "FIN",
            "mileage": "Kilometerstand",
            "first_registration": "Erstzulassung",
            "price": "Preisvorstellung",
        },
    },
    "en": {
        "title": "Trade-in",
        "customer": "Customer",
        "vehicle": "Vehicle offered for trade-in",
        "message": "Message",
        "link": "Full inquiry in mailgate",
        "received": "Received",
        "none": "(no details)",
        "fields": {
            "name": "Name",
            "email": "E-mail",
            "phone": "Phone",
            "street": "Street",
            "postcode": "Postcode",
            "city": "City",
            "make": "Make",
            "model": "Model",
            "vin": "VIN",
            "mileage": "Mileage",
            "first_registration": "First registration",
            "price": "Asking price",
        },
    },
}


def _latin1(value: Any) -> str:
    return str(value).encode("latin-1", "replace").decode("latin-1")


def trade_in_pdf(context: Mapping[str, Any], language: str, dealer_name: str) -> bytes:
    """One A4 page: customer, trade-in vehicle, message, link to the lead."""
    # Imported here: fpdf2 pulls in fontTools and Pillow, which would add about a
    # second to every process start (SMTP must listen fast after a restart).
    from fpdf import FPDF

    labels = LABELS.get(language, LABELS["de"])
    names: dict[str, str] = labels["fields"]  # type: ignore[assignment]
    lead = context["lead"]
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"{labels['title']} - Lead {lead['id']}"))
    pdf.set_creator("mailgate")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(
        0, 10, _latin1(f"{labels['title']} - Lead {lead['id']}"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("helvetica", "", 10)
    line = f"{dealer_name} · {labels['received']}: {lead['received_at']} · {lead['source']}"
    pdf.cell(0, 6, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    for heading, data in (
        (labels["customer"], context["customer"]),
        (labels["vehicle"], context["trade_in"]),
    ):
        pdf.ln(4)
        pdf.set_font("helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", "", 11)
        rows = [(names.get(k, k), v) for k, v in data.items() if v not in (None, "")]
        for label, value in rows or [("", labels["none"])]:
            pdf.cell(45, 6, _latin1(label))
            pdf.multi_cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    if lead.get("message"):
        pdf.ln(4)
        pdf.set_font("helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(labels["message"]), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", "", 11)
        pdf.multi_cell(0, 6, _latin1(lead["message"][:4000]), new_x="LMARGIN", new_y="NEXT")
    if lead.get("url"):
        pdf.ln(6)
        pdf.set_font("helvetica", "U", 11)
        pdf.set_text_color(0, 0, 200)
        text = _latin1(f"{labels['link']}: {lead['url']}")
        pdf.cell(0, 8, text, link=lead["url"], new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
