"""Composed mail: templates, autoescape, threading headers, header-injection safety."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.outbound.compose import (
    Attachment,
    build_message,
    environment,
    format_price,
    new_message_id,
    render_mail,
)

CONTEXT = {
    "lead": {
        "id": 42,
        "source": "website",
        "kind": "test_drive",
        "subject": "Probefahrt",
        "message": "<script>alert(1)</script> Bitte melden.",
        "received_at": "20.11.2026 10:00",
        "vehicle": {
            "make": "Volkswagen",
            "model": "Golf",
            "price": 24890.0,
            "vin": None,
            "listing_id": None,
        },
        "url": "https://leads.autohaus.example/leads/42",
    },
    "customer": {
        "name": "Erika <b>Muster</b>",
        "email": "erika@kunden.example",
        "phone": "0170 1",
        "street": "",
        "postcode": "",
        "city": "",
    },
    "assignee": {"name": "Anna Schmidt", "email": "anna@autohaus.example"},
    "dealer_name": "Autohaus Beispiel",
}
BASE_HEADERS = {
    "message-id",
    "date",
    "from",
    "to",
    "subject",
    "auto-submitted",
    "x-auto-response-suppress",
    "x-mailgate-origin",
    "mime-version",
    "content-type",
}


@pytest.mark.parametrize(("language", "word"), [("de", "Neue Anfrage"), ("en", "New inquiry")])
def test_notification_renders_in_both_languages(language: str, word: str) -> None:
    mail = render_mail("notification", language, CONTEXT)
    assert mail.subject.startswith("[Lead 42] ") and word in mail.subject
    assert "\n" not in mail.subject
    assert "Bitte melden." in mail.text and "24.890 €" in mail.text or "24,890" in mail.text
    assert "&lt;script&gt;" in mail.html and "<script>" not in mail.html
    assert "&lt;b&gt;Muster" in mail.html
    assert "<script>" in mail.text  # plain text is not HTML-escaped


def test_unknown_language_falls_back_to_german() -> None:
    assert "Neue Anfrage" in render_mail("notification", "xx", CONTEXT).subject


def test_html_templates_are_autoescaped_and_text_templates_are_not() -> None:
    env = environment()
    names = env.list_templates()
    assert {n.split("/")[0] for n in names} == {"de", "en"}
    for name in names:
        # W2: the environment that renders mail HTML must escape, for every template
        assert env.autoescape(name) is name.endswith(".html"), name


XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'
UNASSIGNED = {
    "inbound": {
        "id": 7,
        "subject": XSS,
        "sender": XSS,
        "received_at": "20.11.2026 10:00",
        "reason": XSS,
    },
    "dealer_name": XSS,
}
FAILED = {
    "failed": {
        "id": 9,
        "purpose": XSS,
        "recipients": [XSS, "anna@autohaus.example"],
        "subject": XSS,
        "error": XSS,
    },
    "dealer_name": XSS,
}


def xss_notification() -> dict:
    lead = {k: XSS for k in ("source", "kind", "subject", "message", "received_at")}
    lead |= {"id": 42, "url": "javascript:alert(3)"}
    lead["vehicle"] = {k: XSS for k in ("make", "model", "price", "vin", "listing_id")}
    customer = {k: XSS for k in ("name", "email", "phone", "street", "postcode", "city")}
    return {
        "lead": lead,
        "customer": customer,
        "assignee": {"name": XSS, "email": XSS},
        "dealer_name": XSS,
    }


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("name", ["notification", "unassigned", "delivery_failure"])
def test_no_field_of_any_template_reaches_the_html_unescaped(name: str, language: str) -> None:
    context = {"notification": xss_notification(), "unassigned": UNASSIGNED}.get(name, FAILED)
    mail = render_mail(name, language, context)
    assert "<script" not in mail.html and "<img" not in mail.html
    assert "onerror=&#34;" in mail.html or "onerror=&quot;" in mail.html
    assert "javascript:" not in mail.html  # a non-http link is not made a link
    assert mail.subject and "\n" not in mail.subject and mail.text.strip()


@pytest.mark.parametrize("language", ["de", "en"])
def test_all_templates_render_with_the_documented_context(language: str) -> None:
    failed = {**FAILED["failed"], "purpose": "notification", "error": "550 5.1.1 unknown"}
    unassigned = render_mail("unassigned", language, {**UNASSIGNED, "dealer_name": "AH"})
    notice = render_mail("delivery_failure", language, {"failed": failed, "dealer_name": "AH"})
    assert "20.11.2026 10:00" in unassigned.text and "AH" in unassigned.html
    assert "550 5.1.1 unknown" in notice.text and "anna@autohaus.example" in notice.html


def test_notification_without_vehicle_data_renders() -> None:
    lead = {**CONTEXT["lead"], "vehicle": {}, "url": ""}
    mail = render_mail("notification", "de", {**CONTEXT, "lead": lead})
    assert mail.subject.startswith("[Lead 42] ") and "Fahrzeug" not in mail.text


def test_language_variants_and_override_dir(tmp_path: Path) -> None:
    assert render_mail("notification", "EN-gb", CONTEXT).subject.startswith("[Lead 42] New")
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "notification.subject.txt").write_text("Eigen {{ lead.id }}\nzweite Zeile")
    mail = render_mail("notification", "de", CONTEXT, override_dir=tmp_path)
    assert mail.subject == "Eigen 42 zweite Zeile"  # collapsed to one line
    assert "Bitte melden." in mail.text  # the other files still come from the package


def test_strict_undefined_catches_a_missing_key() -> None:
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        render_mail("notification", "de", {k: v for k, v in CONTEXT.items() if k != "assignee"})


def test_format_price() -> None:
    assert format_price(24890.0, "de") == "24.890 €"
    assert format_price(24890, "en") == "€24,890"
    assert format_price("auf Anfrage", "de") == "auf Anfrage"


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def build(**overrides: object) -> bytes:
    args: dict = {
        "from_name": "Autohaus Beispiel",
        "from_address": "leads@autohaus.example",
        "to": [("Anna Schmidt", "anna@autohaus.example")],
        "subject": "Hallo",
        "text": "Text",
        "html": "<p>Text</p>",
        "message_id": "<0123456789abcdef0123456789abcdef@autohaus.example>",
    }
    args.update(overrides)
    return build_message(**args)


def test_message_has_the_automatic_mail_headers_and_its_message_id() -> None:
    raw = build()
    msg = parse(raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Message-ID"] == "<0123456789abcdef0123456789abcdef@autohaus.example>"
    assert msg.get_body(("plain",)).get_content().strip() == "Text"
    assert msg.get_body(("html",)) is not None


def test_message_id_is_128_random_bits_at_the_domain() -> None:
    ids = {new_message_id("autohaus.example") for _ in range(10_000)}
    assert len(ids) == 10_000  # nothing derived from a key, a counter or the clock
    assert all(re.fullmatch(r"<[0-9a-f]{32}@autohaus\.example>", i) for i in ids)
    assert new_message_id("bad domain\r\n").endswith("@localhost>")
    assert new_message_id("Müller.example").endswith("@xn--mller-kva.example>")


def test_long_lines_stay_within_smtp_limits() -> None:
    raw = build(text="Grüße " + "x" * 3000, html="<p>" + "ü" * 3000 + "</p>")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii()  # 7bit: no reliance on the relay's 8BITMIME
    body = parse(raw).get_body(("plain",)).get_content()
    assert body.strip() == "Grüße " + "x" * 3000


def test_a_broken_original_is_attached_byte_for_byte() -> None:
    original = b"From: a@b\r\nSubject: \xff\xfe\x00\n\rbody " + b"y" * 5000 + b"\r\n.\r\n"
    raw = build(attachments=[Attachment("original.eml", original, "message/rfc822")])
    msg = parse(raw)
    [part] = list(msg.iter_attachments())
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_filename() == "original.eml"
    assert part.get_content() == original
    raw = build(attachments=[Attachment("x\r\nBcc: a@b.example", b"1", "no such/type\r\n")])
    [part] = list(parse(raw).iter_attachments())
    assert part.get_content_type() == "application/octet-stream" and "\n" not in part.get_filename()


def test_structure_round_trips_without_defects() -> None:
    """Text + HTML + two attachments (one with a non-ASCII name) parse back exactly."""
    pdf = bytes(range(256)) * 20
    raw = build(
        subject="Anfrage von Jürgen Groß – " + "lang " * 40,
        text="Grüße\nZeile zwei",
        html="<p>Grüße</p>",
        attachments=[
            Attachment("Inzahlungnahme Müller.pdf", pdf, "application/pdf"),
            Attachment('say "hi".txt', b"hi", "text/plain"),
        ],
    )
    msg = parse(raw)
    assert not msg.defects and all(not p.defects for p in msg.walk())
    assert msg["Subject"] == "Anfrage von Jürgen Groß – " + "lang " * 39 + "lang"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Grüße\nZeile zwei"
    assert msg.get_body(("html",)).get_content() == "<p>Grüße</p>"
    first, second = msg.iter_attachments()
    assert first.get_filename() == "Inzahlungnahme Müller.pdf" and first.get_content() == pdf
    assert second.get_filename() == "say _hi_.txt" and second.get_content() == "hi"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_international_domains_are_idna_encoded() -> None:
    msg = parse(build(to=[("Jörg", "joerg@müller.example")]))
    assert msg["To"].addresses[0].domain == "xn--mller-kva.example"
    assert msg["To"].addresses[0].display_name == "Jörg"


def test_long_references_are_not_encoded() -> None:
    refs = [f"<ref-{n}-{'x' * 60}@autohaus.example>" for n in range(12)]
    raw = build(in_reply_to=refs[-1], references=refs)
    header = [line for line in raw.split(b"\r\n") if line.startswith(b"References:")][0]
    assert b"=?" not in header and all(r.encode() in raw for r in refs)
    assert parse(raw)["References"].split() == refs


@pytest.mark.parametrize("brk", ["\r\n", "\r", "\n", "\x00", "\u2028", "\u2029", "\x85", "\x0b"])
def test_crlf_in_customer_data_never_creates_a_header(brk: str) -> None:
    evil = f"Erika{brk}Bcc: victim@evil.example{brk}X-Injected: 1"
    raw = build(
        to=[(evil, "anna@autohaus.example")],
        subject=evil,
        reply_to=[(evil, "erika@kunden.example")],
    )
    msg = parse(raw)
    names = {name.lower() for name in msg.keys()}
    assert names == BASE_HEADERS | {"reply-to"}
    assert b"\r\nBcc:" not in raw and b"\r\nX-Injected:" not in raw


@pytest.mark.parametrize(
    "address",
    [
        "a@b.example\r\nBcc: x@y.example",
        "no-at-sign",
        "a b@c.example",
        "<a@b.example>",
        "a@b.example,c@d.example",
        "jörg@b.example",
        "a@b\u2028.example",
        "a@",
        "@b.example",
        "",
    ],
)
def test_bad_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValueError):
        build(to=[("X", address)])
    with pytest.raises(ValueError):
        build(reply_to=[("X", address)])


def test_no_recipient_and_bad_extra_headers_are_rejected() -> None:
    with pytest.raises(ValueError):
        build(to=[])
    with pytest.raises(ValueError):
        build(extra_headers={"Bcc": "x@y.example"})
    with pytest.raises(ValueError):
        build(extra_headers={"X-A\r\nBcc": "x"})
    msg = parse(build(extra_headers={"X-Lead": "1\r\nBcc: x@y.example"}))
    assert msg["X-Lead"] == "1 Bcc: x@y.example" and "bcc" not in {k.lower() for k in msg}


PIECES = list("abcXYZ <>\"'@:;,=?\\") + [
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\u2028",
    "\u2029",
    "\x85",
    "ü",
    "€",
    "=?UTF-8?Q?=0A?=",
    "=?utf-8?b?DQpCY2M6IHhAZS5leGFtcGxl?=",
    "Bcc: x@e.example",
    "\r\nBcc: evil@x.example",
    "\t",
    "\x0b",
    "\x1c",
    "L" * 120,
]
DANGEROUS = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(name=DANGEROUS, subject=DANGEROUS)
def test_no_input_changes_the_header_set(name: str, subject: str) -> None:
    raw = build(
        to=[(name, "anna@autohaus.example")],
        subject=subject,
        reply_to=[(name, "erika@kunden.example")],
    )
    msg = parse(raw)
    assert {n.lower() for n in msg.keys()} == BASE_HEADERS | {"reply-to"}
    for value in (msg["To"], msg["Subject"], msg["Reply-To"]):
        assert "\n" not in str(value) and "\r" not in str(value)
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert line[:1] in (b" ", b"\t") or b":" in line  # every line is a header or a fold
