"""The distribution mail templates render in both languages and escape every field."""

from __future__ import annotations

import pytest

from mailgate.distribution.tradein_pdf import trade_in_pdf
from mailgate.outbound.compose import render_mail

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def context() -> dict:
    lead = {k: XSS for k in ("source", "kind", "subject", "message", "received_at")}
    lead |= {"id": 42, "url": "javascript:alert(3)", "vehicle": {"make": XSS}}
    customer = {k: XSS for k in ("name", "email", "phone", "street", "postcode", "city")}
    return {
        "lead": lead,
        "customer": customer,
        "assignee": {"name": XSS, "email": XSS},
        "forward": {"by": XSS, "note": XSS},
        "followup": {"subject": XSS, "message": XSS},
        "trade_in": {"make": XSS},
        "dealer_name": XSS,
    }


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("name", ["pool_notice", "followup", "reassigned", "trade_in_forward"])
def test_templates_escape_and_render(name: str, language: str) -> None:
    mail = render_mail(name, language, context())
    assert mail.subject.startswith("[Lead 42] ") and "\n" not in mail.subject
    assert "<script" not in mail.html and "<img" not in mail.html
    assert "javascript:" not in mail.html
    assert mail.text.strip()


def test_trade_in_pdf_survives_characters_outside_latin1() -> None:
    ctx = context()
    ctx["customer"]["name"] = "Zoë Żółć 🚗"
    ctx["lead"]["url"] = "https://leads.autohaus.example/leads/42"
    pdf = trade_in_pdf(ctx, "de", "Autohaus Beispiel")
    assert pdf.startswith(b"%PDF-") and b"/URI (https://leads.autohaus.example/leads/42)" in pdf
