"""ADF/XML reading: odd prologues, repairs, hostile documents, where the document hides."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.parsers import adf, parse_raw
from mailgate.parsers.adf_xml import (
    AdfError,
    contains_adf,
    decode_xml_bytes,
    extract_document,
    parse_document,
    read_prospect,
)
from mailgate.parsers.message import load

MINIMAL = (
    "<adf><prospect><vehicle><make>Opel</make><model>Corsa</model></vehicle>"
    "<customer><contact><name part='full'>Ina Roth</name><email>ina@kunde.example</email>"
    "</contact></customer></prospect></adf>"
)


@pytest.mark.parametrize(
    "prologue",
    [
        '<?xml version="1.0"?>\n<?adf version="1.0"?>\n',
        '<?ADF VERSION "1.0"?>\n<?XML VERSION "1.0"?>\n',
        '<?adf version="1.0"?>\n<?xml version="1.0" encoding="UTF-8"?>\n',
        '\n\n    <?xml version="1.0"?>\n',
        "Neue Anfrage:\n\n",
    ],
)
def test_every_odd_prologue_yields_the_document(prologue: str) -> None:
    document = extract_document(prologue + MINIMAL + "\n\n-- \nFooter")
    assert document == MINIMAL
    root, notes = parse_document(document)
    prospect = read_prospect(root)
    assert prospect.vehicles[0].model == "Corsa"
    assert prospect.customer.emails == ["ina@kunde.example"]
    assert notes == []


def test_escaped_document_is_unescaped() -> None:
    escaped = "Lead: &lt;adf&gt;&lt;prospect&gt;&lt;/prospect&gt;&lt;/adf&gt;"
    assert contains_adf(escaped)
    assert extract_document(escaped) == "<adf><prospect></prospect></adf>"


def test_no_document_is_none() -> None:
    assert extract_document("Nur Text, kein XML.") is None
    assert not contains_adf("adfadf <adfx>")


def test_upper_case_tags_and_namespaces_are_normalised() -> None:
    root, _ = parse_document(
        '<ADF xmlns="urn:x"><PROSPECT><VEHICLE INTEREST="Trade-In"><MAKE>VW</MAKE></VEHICLE>'
        "</PROSPECT></ADF>"
    )
    prospect = read_prospect(root)
    assert prospect.vehicles[0].interest == "trade-in"
    assert prospect.vehicles[0].make == "VW"


def test_repairs_unquoted_attributes_and_ampersands_but_not_cdata() -> None:
    root, notes = parse_document(
        "<adf><prospect status=new><vehicle interest=buy><make>A & B</make></vehicle>"
        "<customer><comments><![CDATA[x &amp; y & <b a=1>]]></comments></customer>"
        "</prospect></adf>"
    )
    prospect = read_prospect(root)
    assert prospect.vehicles[0].make == "A & B"
    assert prospect.customer_comments == "x &amp; y & <b a=1>"
    assert notes and "repaired" in notes[0]


def test_broken_xml_is_a_clear_error() -> None:
    with pytest.raises(AdfError, match="not well-formed"):
        parse_document("<adf><prospect><vehicle></prospect></adf>")


def test_billion_laughs_is_refused_quickly() -> None:
    entities = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    document = f'<!DOCTYPE adf [<!ENTITY l0 "lol">{entities}]><adf>&l9;</adf>'
    started = time.perf_counter()
    with pytest.raises(AdfError, match="possible XXE or entity-expansion attack"):
        parse_document(extract_document(document) or "")
    assert time.perf_counter() - started < 1.0


def test_external_entity_never_reads_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711", encoding="utf-8")
    document = (
        f'<?xml version="1.0"?><!DOCTYPE adf [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        "<adf><prospect><customer><contact><name part='full'>&x;</name>"
        "<email>a@kunde.example</email></contact></customer></prospect></adf>"
    )
    mail = EmailMessage()
    mail["From"] = "leads@portal.example"
    mail["Subject"] = "Lead"
    mail.set_content(document)
    result = parse_raw(mail.as_bytes())
    dumped = str(result.to_json())
    assert "TOP-SECRET-4711" not in dumped
    assert result.parser == "adf" and not result.is_lead
    assert any("ADF document refused" in w for w in result.warnings)


def test_harmless_doctype_is_accepted() -> None:
    root, _ = parse_document('<!DOCTYPE adf SYSTEM "adf.dtd">\n' + MINIMAL)
    assert read_prospect(root).customer.full_name == "Ina Roth"


def test_oversized_document_is_refused() -> None:
    with pytest.raises(AdfError, match="larger than"):
        parse_document("<adf>" + "x" * 1_000_001 + "</adf>")


def test_document_without_prospect_is_an_error() -> None:
    root, _ = parse_document("<adf></adf>")
    with pytest.raises(AdfError, match="no <prospect>"):
        read_prospect(root)


@pytest.mark.parametrize(
    ("payload", "charset", "expected"),
    [
        (b"\xef\xbb\xbf<adf>\xc3\xa4</adf>", None, "<adf>ä</adf>"),
        ('<?xml version="1.0" encoding="ISO-8859-1"?><adf>ä</adf>'.encode("latin-1"), "utf-8", "ä"),
        ("<adf>ä</adf>".encode("windows-1252"), "windows-1252", "<adf>ä</adf>"),
        ("<adf>€</adf>".encode("windows-1252"), None, "<adf>€</adf>"),
        ("<adf>ä</adf>".encode("utf-16"), None, "<adf>ä</adf>"),
    ],
)
def test_attachment_bytes_are_decoded(payload: bytes, charset: str | None, expected: str) -> None:
    assert expected in decode_xml_bytes(payload, charset)


def _mail_with_raw_html(markup: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Portal <leads@portal.example>"
    mail["Subject"] = "Lead"
    mail.set_content(markup, subtype="html")
    return mail.as_bytes()


def test_raw_adf_inside_html_is_found() -> None:
    view = load(_mail_with_raw_html(f"<html><body><p>Neu:</p>{MINIMAL}</body></html>"))
    assert adf.matches(view)
    lead = adf.parse(view)
    assert lead.customer.email == "ina@kunde.example"
    assert lead.vehicle.model == "Corsa"


def test_vendor_contact_never_becomes_the_customer() -> None:
    document = (
        "<adf><prospect><vehicle><make>Kia</make><model>Ceed</model></vehicle>"
        "<customer><contact><name part='full'>Ole Fink</name></contact></customer>"
        "<vendor><vendorname>Autohaus</vendorname><contact><name part='full'>Verkauf</name>"
        "<email>verkauf@haendler.example</email><phone>0551 1</phone></contact></vendor>"
        "</prospect></adf>"
    )
    mail = EmailMessage()
    mail["From"] = "Portal <leads@portal.example>"
    mail["Subject"] = "Lead"
    mail.set_content(document)
    lead = parse_raw(mail.as_bytes())
    assert lead.customer.name == "Ole Fink"
    assert lead.customer.email is None and lead.customer.phone is None
    assert not lead.is_lead
    assert any("neither e-mail address nor phone" in w for w in lead.warnings)


def test_finance_amounts_are_never_the_price() -> None:
    document = (
        "<adf><prospect><vehicle><make>Kia</make><model>EV6</model>"
        "<finance><method>finance</method><amount type='downpayment'>5000</amount>"
        "<amount type='monthly'>399</amount><amount type='total'>48000</amount></finance>"
        "</vehicle><customer><contact><name part='full'>Ole Fink</name>"
        "<email>ole@kunde.example</email></contact></customer></prospect></adf>"
    )
    root, _ = parse_document(document)
    view = load(_mail_with_raw_html(document))
    lead = adf.parse(view)
    assert read_prospect(root).vehicles[0].finance is not None
    assert lead.kind == "financing"
    assert lead.vehicle.price is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from(list("<>/?!&;=\"' adfprospectvehicle[]CDAT-x")), max_size=300)
)
def test_any_text_either_parses_or_raises_adf_error(text: str) -> None:
    document = extract_document("<adf>" + text)
    assert document is not None
    try:
        parse_document(document)
    except AdfError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_attachment_bytes_never_raise(payload: bytes) -> None:
    assert isinstance(decode_xml_bytes(payload, "x-unknown"), str)


def test_many_unterminated_doctypes_stay_linear() -> None:
    text = "<!DOCTYPE [ " * 20_000 + MINIMAL
    started = time.perf_counter()
    document = extract_document(text)
    assert document is not None and document.endswith(MINIMAL)
    assert time.perf_counter() - started < 1.0


def _adf_mail(reply_to: str, sender: str = "Portal <leads@portal.example>") -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["Reply-To"] = reply_to
    mail["Subject"] = "Lead"
    mail.set_content(
        "<adf><prospect><vehicle><make>Kia</make><model>Ceed</model></vehicle>"
        "<customer><contact><name part='full'>Ole Fink</name></contact></customer></prospect></adf>"
    )
    return mail.as_bytes()


def test_reply_to_is_the_fallback_but_never_the_sender_itself() -> None:
    lead = parse_raw(_adf_mail("Ole Fink <ole@kunde.example>"))
    assert lead.customer.email == "ole@kunde.example"
    assert parse_raw(_adf_mail("leads@portal.example")).customer.email is None


def test_customer_address_is_taken_from_a_written_form() -> None:
    mail = EmailMessage()
    mail["From"] = "Portal <leads@portal.example>"
    mail["Subject"] = "Lead"
    mail.set_content(
        "<adf><prospect><customer><contact><name part='full'>Ole Fink</name>"
        "<email>mailto:Ole Fink &lt;ole@kunde.example&gt;</email><email>kaputt</email>"
        "</contact></customer></prospect></adf>"
    )
    assert parse_raw(mail.as_bytes()).customer.email == "ole@kunde.example"
