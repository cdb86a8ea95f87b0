"""Composed mail: templates, autoescape, threading headers, header-injection safety."""

from __future__ import annotations

import email
from email import policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.outbound.compose import build_message, environment, make_message_id, render_mail

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
    assert env.autoescape("de/notification.html") is True
    assert env.autoescape("de/notification.txt") is False


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
        "message_id": make_message_id("notification:1:1", "autohaus.example"),
    }
    args.update(overrides)
    return build_message(**args)


def test_message_has_the_automatic_mail_headers_and_a_stable_message_id() -> None:
    raw = build()
    msg = parse(raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Message-ID"] == make_message_id("notification:1:1", "autohaus.example")
    assert make_message_id("a", "x.example") != make_message_id("b", "x.example")
    assert msg.get_body(("plain",)).get_content().strip() == "Text"
    assert msg.get_body(("html",)) is not None


def test_long_references_are_not_encoded() -> None:
    refs = [f"<ref-{n}-{'x' * 60}@autohaus.example>" for n in range(12)]
    raw = build(in_reply_to=refs[-1], references=refs)
    header = [line for line in raw.split(b"\r\n") if line.startswith(b"References:")][0]
    assert b"=?" not in header and all(r.encode() in raw for r in refs)
    assert parse(raw)["References"].split() == refs


def test_crlf_in_customer_data_never_creates_a_header() -> None:
    evil = "Erika\r\nBcc: victim@evil.example\r\nX-Injected: 1"
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
    ],
)
def test_bad_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValueError):
        build(to=[("X", address)])


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
    "Bcc: x@e.example",
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
