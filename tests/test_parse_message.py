"""Robustness of mail loading (FORMATS.md 1.3): never raise, degrade with a warning."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.parsers import parse_raw
from mailgate.parsers.message import (
    MAX_MULTIPARTS,
    MAX_NESTED_MESSAGES,
    MAX_PARTS,
    ShapeError,
    check_shape,
    decode_words,
    html_to_text,
    load,
    remove_banners,
    strip_subject_tags,
)

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "mails").glob("*/*.eml"))


def test_encoded_crlf_in_display_name_cannot_inject_an_address() -> None:
    raw = (
        b"From: =?utf-8?q?Max=0D=0ABcc=3A_evil=40x.example?= <max@kunde.example>\r\n"
        b"Subject: hi\r\n\r\nhallo\r\n"
    )
    view = load(raw)
    assert view.from_addresses == [("Max Bcc: evil@x.example", "max@kunde.example")]
    assert any("line break" in w for w in view.warnings)


def test_raw_latin1_header_bytes_are_decoded() -> None:
    raw = "From: Jürgen Weiß <jw@kunde.example>\r\nSubject: Anfrage für Golf\r\n\r\nx".encode(
        "latin-1"
    )
    view = load(raw)
    assert view.subject == "Anfrage für Golf"
    assert view.from_addresses == [("Jürgen Weiß", "jw@kunde.example")]


def test_unknown_charset_label_falls_back_with_a_warning() -> None:
    raw = (
        b"From: a@kunde.example\r\nSubject: =?x-unknown?q?Gr=FC=DFe?=\r\n"
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\nGr\xfc\xdfe\r\n"
    )
    view = load(raw)
    assert view.subject == "Grüße" and view.text.strip() == "Grüße"
    assert any("x-unknown" in w for w in view.warnings)


@pytest.mark.parametrize(
    "params",
    [
        b"; charset*",  # RFC 2231 name without a value: IndexError in the stdlib
        b"; charset=utf-8; a*0*",
        b"; charset=utf-8; title*=us\x00ascii'en'x",  # NUL in the 2231 charset: ValueError
    ],
)
def test_broken_rfc2231_parameters_still_load_and_yield_the_lead(params: bytes) -> None:
    """Found by atheris (M4): the stdlib's Content-Type parser raised inside
    ``message_from_bytes``, so the whole mail was unloadable (``unparseable``)."""
    raw = (
        b"From: Erika Musterfrau <erika@kunden.example>\nSubject: Anfrage\n"
        b"Content-Type: text/plain" + params + b"\n\n"
        b"Name: Erika Musterfrau\nTelefon: 0170 1234567\nNachricht: Ist der Golf noch da?\n"
    )
    view = load(raw)
    assert view.message.get_content_type() == "text/plain"
    assert "Telefon: 0170 1234567" in view.text
    lead = parse_raw(raw)
    assert lead.non_lead_reason is None, lead.warnings
    assert lead.customer.phone_e164 == "+491701234567"


_LEAD_BODY = b"Name: Erika Musterfrau\nTelefon: 0170 1234567\n"
_NUL_LABEL_MAILS = {
    # get_boundary, called by the feed parser itself: the mail did not load
    "boundary": b"Content-Type: multipart/mixed; boundary*=us\x00ascii''b\n\n--b\n"
    b"Content-Type: text/plain\n\n" + _LEAD_BODY + b"--b--\n",
    "charset": b"Content-Type: text/plain; charset*=us\x00ascii''utf-8\n\n" + _LEAD_BODY,
    # a recovered part (the outer boundary never matches) is parsed on its own
    "salvaged part": b"Content-Type: multipart/mixed; boundary=X\n\n--Y\n"
    b"Content-Type: multipart/alternative; boundary*=us\x00ascii''Z\n\n" + _LEAD_BODY + b"--Y--\n",
}


@pytest.mark.parametrize("where", sorted(_NUL_LABEL_MAILS))
def test_a_nul_in_an_rfc2231_charset_label_does_not_stop_the_lead(where: str) -> None:
    """Found by atheris (M4): ``str(bytes, "us\\0ascii")`` raised ValueError in the
    stdlib's RFC 2231 decoding, which catches only LookupError."""
    raw = (
        b"From: Erika Musterfrau <erika@kunden.example>\nSubject: Anfrage\n"
        + (_NUL_LABEL_MAILS[where])
    )
    assert "Telefon: 0170 1234567" in load(raw).text
    lead = parse_raw(raw)
    assert lead.non_lead_reason is None, lead.warnings
    assert lead.customer.phone_e164 == "+491701234567"


def test_a_nul_in_an_xml_attachments_charset_label_leaves_the_adf_parser_running() -> None:
    raw = (
        b"From: Erika <erika@kunden.example>\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nsiehe Anhang\n--b\n"
        b"Content-Type: application/xml; charset*=us\x00ascii''utf-8\n"
        b"Content-Disposition: attachment; filename*=us\x00ascii''lead.xml\n\n"
        b"<adf><prospect><customer><contact><name>Erika Musterfrau</name>"
        b"<phone>0170 1234567</phone></contact></customer></prospect></adf>\n--b--\n"
    )
    lead = parse_raw(raw)
    assert lead.parser == "adf", lead.warnings
    assert lead.customer.phone_e164 == "+491701234567"


def test_windows_1252_euro_without_charset_label() -> None:
    view = load(b"From: a@kunde.example\r\n\r\nPreis: 24.890 \x80\r\n")
    assert "24.890 €" in view.text


def test_subject_tags_and_banners_are_removed() -> None:
    assert strip_subject_tags("WG: [EXTERN] Anfrage") == "WG: Anfrage"
    assert strip_subject_tags("*EXTERNAL* Trade-in") == "Trade-in"
    text = (
        "CAUTION: This email originated from outside of the organization.\n"
        "Do not click links.\n\nName: Max\n"
    )
    assert remove_banners(text) == "Name: Max\n"
    german = "ACHTUNG: Diese E-Mail stammt von außerhalb der Organisation.\n\nHallo"
    assert remove_banners(german) == "Hallo"
    assert remove_banners("Achtung: der Wagen hat Hagelschaden.") == (
        "Achtung: der Wagen hat Hagelschaden."
    )


def test_html_to_text_drops_scripts_comments_and_keeps_cells_as_fields() -> None:
    markup = (
        "<!-- banner --><table><tr><td><b>Name</b></td><td>Max</td></tr></table>"
        "<script>alert(1)</script><p>Gr&uuml;&szlig;e</p>"
    )
    assert html_to_text(markup) == "Name: Max\n\nGrüße"


def test_decode_words_handles_mixed_and_broken_words() -> None:
    assert decode_words("=?utf-8?q?M=C3=BCller?= Hans") == "Müller Hans"
    assert decode_words("=?bogus?q?abc") == "=?bogus?q?abc"


def test_too_many_nested_multiparts_are_refused_before_parsing() -> None:
    raw = b"From: a@x.example\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" + (
        b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * (MAX_MULTIPARTS + 1)
    )
    with pytest.raises(ShapeError):
        check_shape(raw)
    lead = parse_raw(raw)
    assert not lead.is_lead and (lead.non_lead_reason or "").startswith("shape:")


def test_nested_attached_messages_are_capped() -> None:
    raw = b"From: a@x.example\r\n\r\n" + b"Content-Type: message/rfc822\r\n" * 11
    with pytest.raises(ShapeError):
        check_shape(raw)


@pytest.mark.parametrize(
    ("unit", "limit"),
    [
        (b"\n--b\r\n", 2 * MAX_PARTS + 2),  # lines starting with "--"
        (b"Content-Type: MultiPart/Mixed\r\n", MAX_MULTIPARTS),  # any letter case
        (b"Content-Type: MESSAGE/rfc822\r\n", MAX_NESTED_MESSAGES),
        (b"Content-Type: message/Global\r\n", MAX_NESTED_MESSAGES),
    ],
)
def test_shape_caps_hold_exactly_at_their_limit(unit: bytes, limit: int) -> None:
    head = b"From: a@x.example\r\n\r\n"
    check_shape(head + unit * limit)
    with pytest.raises(ShapeError):
        check_shape(head + unit * (limit + 1))


def test_a_boundary_line_at_the_very_start_counts() -> None:
    raw = b"--b\r\n" + b"\n--b" * (2 * MAX_PARTS + 2)
    with pytest.raises(ShapeError):
        check_shape(raw)
    check_shape(b"x--b\r\n" + b"\n--b" * (2 * MAX_PARTS + 2))  # "--" mid-line is no boundary


def test_a_huge_header_is_refused() -> None:
    raw = b"From: a@x.example\r\nX-Junk: " + b"a" * 70_000 + b"\r\n\r\nbody"
    assert parse_raw(raw).non_lead_reason == "shape: a header field is longer than 65536 bytes"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixtures_never_raise(path: Path, data: st.DataObject) -> None:
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos : pos + 1] = data.draw(st.binary(min_size=0, max_size=4))
    started = time.perf_counter()
    lead = parse_raw(bytes(raw))
    assert time.perf_counter() - started < 1.0
    for value in vars(lead.customer).values():
        assert value is None or ("\n" not in value and "\r" not in value)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=4000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    lead = parse_raw(raw)
    assert 0.0 <= lead.confidence <= 1.0


@pytest.mark.timeout(120)
def test_a_5_mb_mail_with_hostile_html_still_yields_the_lead() -> None:
    """Bounded, not timed: a quadratic step would take hours on this input, not seconds."""
    hostile = "<script>" * 100_000 + "<!--" * 100_000 + "<" * 1_000_000
    html_part = (
        "<table><tr><td><b>Name</b></td><td>Max Groß</td></tr>"
        "<tr><td><b>E-Mail</b></td><td>max@kunde.example</td></tr></table>" + "<p>x</p>" * 360_000
    )
    raw = (
        "From: Site <www-data@autohaus-beispiel.example>\r\nSubject: Anfrage\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html_part
        + "\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + hostile
        + "\r\n--b--\r\n"
    ).encode()
    assert len(raw) > 5_000_000
    lead = parse_raw(raw)
    assert lead.is_lead and lead.customer.email == "max@kunde.example"
    assert lead.customer.name == "Max Groß"
