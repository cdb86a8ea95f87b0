"""W1 and the mail half of W2: every composed mail kind, fed hostile text.

Every mail mailgate sends (notification, reminder, stage 1/2, resubmission,
relay in both directions, acknowledgement, follow-up, pool notice, reassigned,
unassigned, delivery failure, IMAP oversize, password reset, trade-in CC) is
rendered by :func:`mailgate.outbound.outbox.compose_template`; these tests drive
that one door with every template and every string of its context replaced by
attacker text, plus hostile display names, ``From`` name (the relay puts the
customer's name there) and threading ids (they come from inbound mail).
"""

from __future__ import annotations

import email
import functools
import tomllib
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Environment

from mailgate.dealer_settings import DealerConfig, config_from_document, validate
from mailgate.outbound import compose
from mailgate.outbound.outbox import compose_template
from mailgate.outbound.samples import SAMPLE_CONTEXTS, sample_context

from .conftest import DEALER_TOML, long_tier

DEALER: DealerConfig = config_from_document(validate(tomllib.loads(DEALER_TOML)))
TEMPLATES = sorted(SAMPLE_CONTEXTS)
TO, REPLY_TO = "anna@autohaus.example", "erika@kunden.example"
# The pieces W1 names: line breaks of every kind, NUL, encoded-word newlines,
# quotes, angle brackets, header-looking text, very long runs.
PIECES = [
    *"abcXYZ <>\"'@:;,=?\\()[]",
    *("\r", "\n", "\r\n", "\x00", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\t", "\x1c"),
    *("ü", "€", "𝔘", "\u202e"),
    "=?UTF-8?Q?=0A?=",
    "=?UTF-8?Q?=0D=0ABcc:_x@evil.example?=",
    "=?utf-8?b?DQpCY2M6IHhAZS5leGFtcGxl?=",
    "Bcc: x@evil.example",
    "\r\nBcc: evil@x.example",
    "\nTo: second@evil.example",
    '"anna@autohaus.example" <evil@x.example>',
    "evil@x.example, other@y.example",
    "\r\n\r\n<html>body</html>",
    "L" * 120,
    "W" * 1000,
]
# Very long runs are covered piece by piece below; here they would only slow every example.
HOSTILE = st.lists(st.sampled_from(PIECES[:-1]), max_size=30).map("".join)
# Threading ids are mailgate's own Message-IDs (ASCII by construction); hostile ASCII is
# tried, non-ASCII must be refused with ValueError (test below), never sent.
ASCII_PIECES = [p for p in PIECES if p.isascii()]
HOSTILE_IDS = st.lists(
    st.lists(st.sampled_from(ASCII_PIECES), max_size=10).map(lambda s: f"<{''.join(s)}@x.example>"),
    max_size=3,
)


# Links mailgate builds itself from the operator's base_url and a signed token, never from
# mail content: left as they are in the W2 payload run (lead.url is guarded anyway).
SYSTEM_URLS = {"url", "link", "actions"}


def _replace_strings(
    value: Any, text: Callable[[], str], keep: frozenset[str] = frozenset()
) -> Any:
    """The same structure with every string leaf replaced by ``text()`` (keys in ``keep``
    stay as they are)."""
    if isinstance(value, dict):
        return {k: v if k in keep else _replace_strings(v, text, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_strings(v, text, keep) for v in value]
    if isinstance(value, str):
        return text()
    return value


def _compose(template: str, language: str, context: dict[str, Any], name: str, ids: list[str]):
    return compose_template(
        DEALER,
        key=f"w1:{template}",
        template=template,
        language=language,
        context=context,
        to=[(name, TO)],
        reply_to=[(name, REPLY_TO)],
        from_name=f"{name} ({DEALER.from_name})",
        in_reply_to=ids[0] if ids else None,
        references=ids,
    )


def _header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    msg = email.message_from_bytes(head + b"\r\n\r\n", policy=policy.SMTP)
    return sorted(n.lower() for n in msg.keys())


@functools.cache
def _expected_headers(template: str, language: str, n_ids: int) -> list[str]:
    """The header names of the same mail composed from harmless values."""
    ids = ["<a@b.example>"] * n_ids
    return _header_names(_compose(template, language, SAMPLE_CONTEXTS[template], "Anna", ids).raw)


def _check(template: str, language: str, text: str, ids: list[str], structure: bool = True) -> None:
    context = _replace_strings(SAMPLE_CONTEXTS[template], lambda: text)
    expected = _expected_headers(template, language, len(ids))
    raw = _compose(template, language, context, text, ids).raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert len(line) <= 998 and b"\x00" not in line and b"\r" not in line
        assert line[:1] in (b" ", b"\t") or b":" in line  # a header or its fold
    msg: EmailMessage = email.message_from_bytes(  # type: ignore[assignment]
        raw if structure else head + b"\r\n\r\n", policy=policy.default
    )
    assert sorted(n.lower() for n in msg.keys()) == expected, (template, text)
    values = {name: str(msg[name]) for name in ("Subject", "To", "From", "Reply-To")}
    for value in values.values():
        assert "\n" not in value and "\r" not in value
    # exactly the intended envelope-visible addresses, whatever the display name says
    assert [a for _, a in getaddresses([values["To"]])] == [TO]
    assert [a for _, a in getaddresses([values["Reply-To"]])] == [REPLY_TO]
    assert [a for _, a in getaddresses([values["From"]])] == [DEALER.sender_address]
    if structure:
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_w1_every_mail_kind_keeps_its_header_set_with_each_dangerous_piece(template: str) -> None:
    """W1: each dangerous piece on its own, in every string of every mail kind's context,
    the display names, the From name and the threading ids: same header set, same
    addresses."""
    for piece in PIECES:
        ids = [f"<x{piece}@y.example>"] if piece.isascii() else []
        _check(template, "de", f"Erika{piece}Muster{piece}", ids)


@pytest.mark.parametrize("bad_id", ["<ü@x.example>", "<a@€.example>", "<a@b.example>\u00e9"])
def test_w1_non_ascii_threading_id_is_refused(bad_id: str) -> None:
    """W1: a threading id that cannot go into a header as ASCII is refused (ValueError,
    which the outbox treats as unusable input), not mangled into the header section."""
    with pytest.raises(ValueError):
        _compose("relay", "de", SAMPLE_CONTEXTS["relay"], "Anna", [bad_id])


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_w1_header_injection_hypothesis_over_every_mail_kind() -> None:
    """W1: hypothesis, 1,000 examples (10,000 with MAILGATE_LONG=1) of hostile names,
    subjects and field values over every composed mail kind: 0 messages whose re-parsed
    header set differs from the expected one."""
    examples = 10_000 if long_tier() else 1_000
    seen = {"count": 0}

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(
        template=st.sampled_from(TEMPLATES),
        language=st.sampled_from(["de", "en"]),
        text=HOSTILE,
        ids=HOSTILE_IDS,
    )
    def run(template: str, language: str, text: str, ids: list[str]) -> None:
        _check(template, language, text, ids, structure=False)
        seen["count"] += 1

    run()
    print(f"FIGURE W1 composed mails with a changed header set: 0/{seen['count']}")
    assert seen["count"] >= examples * 0.9


@pytest.mark.parametrize(
    "address",
    ["a@b.example\r\nBcc: x@y.example", "a@b.example,c@d.example", '"x" <a@b.example>', "a@b\n"],
)
def test_w1_invalid_recipient_address_is_rejected_not_sanitised(address: str) -> None:
    """W1: an address we cannot put into a header as-is makes composing fail (To) or is
    dropped (Reply-To from a parsed inquiry) — never "cleaned" into another address."""
    with pytest.raises(ValueError):
        compose_template(
            DEALER,
            key="w1",
            template="notification",
            language="de",
            context=SAMPLE_CONTEXTS["notification"],
            to=[("X", address)],
        )
    mail = compose_template(
        DEALER,
        key="w1",
        template="notification",
        language="de",
        context=SAMPLE_CONTEXTS["notification"],
        to=[("X", TO)],
        reply_to=[("Y", address)],
    )
    assert "reply-to" not in _header_names(mail.raw)


# --- W2, mail side -----------------------------------------------------------------------

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=javascript:alert(1)>",
    "<body onload=alert(1)>",
    "<a href=javascript:alert(1)>x</a>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    '" onmouseover="alert(1)',
    "' onmouseover='alert(1)",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "<!--<script>alert(1)//-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<object data=javascript:alert(1)>",
    "<meta http-equiv=refresh content=0;url=javascript:alert(1)>",
    "<base href=//evil.example/>",
    "<form action=//evil.example><button>x</button></form>",
    "<link rel=stylesheet href=//evil.example/x.css>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "{{ 7*7 }}{% raw %}",
    "<scr<script>ipt>alert(1)</script>",
]
DANGEROUS_TAGS = {
    "script", "img", "svg", "iframe", "body", "object", "embed", "meta", "base", "form",
    "input", "button", "link", "math", "details", "textarea", "style", "frame", "video",
    "audio", "source", "template",
}  # fmt: skip


class Elements(HTMLParser):
    """Every start tag with its attributes, and the decoded text, as a browser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _script_url(value: str | None) -> bool:
    squeezed = "".join((value or "").split()).lower()
    return squeezed.startswith(("javascript:", "data:", "vbscript:"))


def live_markup(baseline: str, page: str) -> list[str]:
    """Tags/attributes in ``page`` that the payload made live, compared to ``baseline``
    (the same page rendered with harmless values): new dangerous tags, any event-handler
    attribute, any script/data URL, more tags of any kind with the same attribute names."""
    base, seen = Elements(baseline), Elements(page)
    found: list[str] = []
    for tag, attrs in seen.tags:
        for name, value in attrs:
            if name.startswith("on"):
                found.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction", "data", "content", "xlink:href"):
                if _script_url(value) or (value or "").lower().startswith("//evil"):
                    found.append(f"<{tag} {name}={value!r}>")

    def shape(parser: Elements) -> dict[tuple[str, tuple[str, ...]], int]:
        counts: dict[tuple[str, tuple[str, ...]], int] = {}
        for tag, attrs in parser.tags:
            key = (tag, tuple(sorted(n for n, _ in attrs)))
            counts[key] = counts.get(key, 0) + 1
        return counts

    before, after = shape(base), shape(seen)
    for key, count in after.items():
        if count > before.get(key, 0) and (key[0] in DANGEROUS_TAGS or key not in before):
            found.append(f"new <{key[0]} {' '.join(key[1])}> x{count - before.get(key, 0)}")
    return found


def visible_text(page: str) -> str:
    parser = Elements(page)
    values = [v or "" for _, attrs in parser.tags for _, v in attrs]
    return "\n".join(parser.text + values)


@pytest.mark.parametrize("template", TEMPLATES)
def test_w2_xss_payloads_in_every_field_of_every_mail_template(template: str) -> None:
    """W2 (mail): each of the ~30 payloads in every string of every template's context,
    both languages: the HTML part, parsed with html.parser, has 0 live tags/attributes,
    and the payload is there as text (so the field is rendered, not dropped)."""
    live = 0
    for language in ("de", "en"):
        sample = sample_context(template)
        assert sample is not None
        baseline = compose.render_mail(template, language, sample).html
        assert baseline
        for payload in XSS_PAYLOADS:
            context = _replace_strings(sample, lambda p=payload: p, frozenset(SYSTEM_URLS))
            html = compose.render_mail(template, language, context).html
            assert html is not None
            problems = live_markup(baseline, html)
            live += len(problems)
            assert problems == [], (template, language, payload, problems)
            assert payload.strip() in visible_text(html), (template, payload)
    print(
        f"FIGURE W2 {template}: live tags/attributes from {2 * len(XSS_PAYLOADS)} payloads: {live}"
    )


def test_w2_the_checker_sees_live_markup() -> None:
    """W2: the parser-based check is not blind: unescaped payloads are reported."""
    baseline = "<p>Name: <b>Erika</b></p>"
    for payload in ("<img src=x onerror=alert(1)>", "<script>x</script>", "<a href=javascript:x>"):
        assert live_markup(baseline, f"<p>Name: <b>{payload}</b></p>")


def _environments() -> list[Environment]:
    """Every Jinja environment that renders mail: the packaged one, a dealer override
    one, and any environment object held by the compose module."""
    envs = [compose.environment(), compose._environment(None)]
    envs += [v for v in vars(compose).values() if isinstance(v, Environment)]
    return envs


def test_w2_no_mail_template_environment_has_autoescape_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """W2: fails if any environment that renders mail HTML has autoescape off (for the
    packaged templates and for a dealer's override directory)."""
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "notification.html").write_text("{{ customer.name }}")
    envs = [*_environments(), compose.environment(tmp_path)]
    for env in envs:
        for name in [*env.list_templates(), "de/notification.html", "x.html"]:
            if name.endswith(".html"):
                assert env.autoescape(name) is True, name  # type: ignore[operator]
    context = sample_context("notification")
    assert context is not None
    context["customer"] = {**context["customer"], "name": "<script>x</script>"}
    html = compose.render_mail("notification", "de", context, tmp_path).html
    assert html == "&lt;script&gt;x&lt;/script&gt;"
