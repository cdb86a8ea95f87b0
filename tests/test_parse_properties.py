"""Property tests: no input makes ``parse_raw`` raise, hang or emit unclean fields.

Inputs are the golden fixtures mutated at the byte level (flips, cuts, repeats,
spliced boundaries and header lines) and plain random bytes.  The parser's
catch-all turns an exception into a ``parser error`` warning; these tests also
require that no input *reaches* that catch-all, so a crash hidden by it is
still found.  Hypothesis' own deadline bounds the time per example.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.parsers import ParsedLead, parse_raw

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "mails").glob("*/*.eml"))
SAMPLES = [p.read_bytes() for p in FIXTURES]
SNIPPETS = [
    b"\r\n",
    b"\n\n",
    b"--",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"=?utf-8?q?a=0D=0AB?=",
    b"charset=x-unknown",
    b"\xff\xfe\x00",
    b"<![CDATA[",
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"From: =?utf-8?b?Im5hbWUNCkJjYzogeEB5LmV4YW1wbGUi?= <a@b.example>\r\n",
]
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=timedelta(seconds=1),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "repeat", "insert", "truncate"]))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 200))]
        elif action == "repeat":
            chunk = data[at : at + draw(st.integers(1, 300))]
            data[at:at] = chunk * draw(st.integers(1, 5))
        elif action == "insert":
            data[at:at] = draw(st.sampled_from(SNIPPETS))
        else:
            del data[at:]
    return bytes(data)


def assert_clean(lead: ParsedLead) -> None:
    assert isinstance(lead, ParsedLead)
    assert not any(w.startswith("parser error") for w in lead.warnings), lead.warnings
    output = lead.to_json()
    for group in ("customer", "vehicle", "trade_in"):
        for key, value in (output[group] or {}).items():
            if isinstance(value, str):
                assert "\r" not in value and "\n" not in value, (group, key, value)
    assert "<script" not in (output["message"] or "").lower()


@pytest.mark.skipif(not SAMPLES, reason="no fixtures")
@PROPERTY_SETTINGS
@given(raw=mutated_fixture())
def test_mutated_fixtures_never_raise(raw: bytes) -> None:
    assert_clean(parse_raw(raw))


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=20_000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert_clean(parse_raw(raw))


@PROPERTY_SETTINGS
@given(head=st.binary(max_size=2000), body=st.text(max_size=5000))
def test_random_header_and_text_body_never_raise(head: bytes, body: str) -> None:
    raw = head + b"\r\n\r\n" + body.encode("utf-8", "surrogatepass")
    assert_clean(parse_raw(raw))


@pytest.mark.timeout(30)
def test_five_megabyte_mail_parses_in_bounded_time() -> None:
    """A 5 MB mail (long lines, a big attachment, many label lines) still yields a lead."""
    lines = "".join(f"Feld{i}: Wert {i}\r\n" for i in range(20_000))
    attachment = ("QUJD" * 19 + "\r\n") * 60_000
    raw = (
        "From: Kundin <ina.gross@kunden.example>\r\nTo: leads@autohaus-beispiel.example\r\n"
        "Subject: Anfrage mit Anhang\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Name: Ina Gross\r\nTelefon: 0171 2345678\r\n{lines}Nachricht: {'x' * 200_000}\r\n"
        "--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="gross.pdf"\r\n\r\n'
        f"{attachment}--b1--\r\n"
    ).encode()
    assert len(raw) > 5_000_000
    lead = parse_raw(raw)
    assert_clean(lead)
    assert lead.customer.name == "Ina Gross"
    assert lead.customer.email == "ina.gross@kunden.example"
