"""Layout mutation: a fixture rewritten the way another mailer would write it parses the same.

Why (issue 19 item 6): fixtures written together with the rules pass by
construction; what generalises is *invariance* -- the same inquiry with other
label words, another separator, a table instead of lines, another transfer
encoding or charset, fields in another order, wrapped lines, a forward or a
gateway banner must give the salesperson the same customer, car and question.

For every fixture (the golden ones in ``tests/fixtures/mails/<parser>/``, the
layout fixtures and ``unseen/``) hypothesis draws a chain of rewrites and the
extraction of the rewritten mail is compared field by field with the
extraction of the original.  Examples are derandomised (the same on every run
and machine) and few per fixture; ``MAILGATE_LONG=1`` draws more.

A fixture whose MIME structure does not survive the stdlib's re-serialisation
unchanged (a deliberately broken boundary, an unknown charset, an encoded
CR/LF in a header) tests the MIME loader, not the layout: those are listed by
:func:`_mutable` and left to their own fixture tests.
"""

from __future__ import annotations

import email
import html
import json
import re
from collections.abc import Callable
from email import policy
from email.message import EmailMessage, Message
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.parsers import ParseContext, parse_raw
from mailgate.parsers.lexicon import field_of, labels_for
from mailgate.parsers.message import html_to_text

from .conftest import long_tier

MAILS = Path(__file__).parent / "fixtures" / "mails"
LAYOUTS = Path(__file__).parent / "fixtures" / "layouts"
DEALER = ParseContext(
    dealer_addresses=frozenset(
        {"leads@autohaus-beispiel.example", "verkauf@autohaus-beispiel.example"}
    ),
    region="DE",
)
BANNER = (
    "[EXTERN] Diese E-Mail stammt von außerhalb der Organisation. Klicken Sie nicht auf "
    "Links und öffnen Sie keine Anhänge, wenn Sie den Absender nicht kennen."
)
COMPARED = (
    ("source",),
    ("is_lead",),
    ("kind",),
    ("customer", "email"),
    ("customer", "phone_e164"),
    ("customer", "first_name"),
    ("customer", "last_name"),
    ("vehicle", "make"),
    ("vehicle", "model"),
    ("vehicle", "vin"),
    ("vehicle", "listing_id"),
    ("vehicle", "stock_number"),
    ("vehicle", "price"),
)
EXAMPLES = 40 if long_tier() else 5
# "Label: value" on one line; the label must be one the lexicon knows.
_LABEL_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<label>[^\n:<>]{1,40}?)[ \t]*:[ \t]*(?P<value>\S.*)$"
)


def _fixtures() -> list[Path]:
    found = sorted(MAILS.glob("*/*.eml")) + sorted(MAILS.glob("unseen/*/*.eml"))
    found += sorted(LAYOUTS.glob("*.eml"))
    return [p for p in found if p.with_suffix(".json").exists()]


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _context(path: Path) -> ParseContext:
    spec = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    ctx = spec.get("context")
    if not ctx:
        return DEALER
    return ParseContext(
        dealer_addresses=frozenset(a.lower() for a in ctx.get("dealer_addresses", [])),
        region=ctx.get("region", "DE"),
        trusted_authserv_ids=frozenset(ctx.get("trusted_authserv_ids", [])),
    )


def extraction(raw: bytes, ctx: ParseContext) -> dict[str, Any]:
    """The fields a salesperson relies on, in comparable form."""
    output = parse_raw(raw, ctx=ctx).to_json()
    found: dict[str, Any] = {}
    for path in COMPARED:
        value: Any = output
        for key in path:
            value = (value or {}).get(key)
        if isinstance(value, str):
            value = " ".join(value.split()).casefold()
        found[".".join(path)] = value
    found["message"] = " ".join((output.get("message") or "").split())
    return found


# --- the rewrites ------------------------------------------------------------------------


def _load(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def _text_parts(msg: Message) -> list[EmailMessage]:
    return [
        part  # type: ignore[misc]
        for part in msg.walk()
        if part.get_content_maintype() == "text"
        and part.get_content_subtype() in ("plain", "html")
        and not part.get_filename()
    ]


def _set_text(part: EmailMessage, text: str, subtype: str, charset: str, cte: str) -> None:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    if cte == "8bit" and charset != "utf-8":
        cte = "quoted-printable"  # 8bit latin-1 is legal but stdlib writes it only as QP
    part.set_content(text, subtype=subtype, charset=charset, cte=cte)


def rewrite_labels(text: str, draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """Synonyms, case, separators and order of the known ``Label: value`` lines."""
    lines = text.split("\n")
    synonym = draw(st.booleans())
    case = draw(st.sampled_from(["keep", "upper", "lower"]))
    separator = draw(st.sampled_from([": ", " : ", ":\t", "\t", ":\n"]))
    out: list[str] = []
    for line in lines:
        match = _LABEL_LINE.match(line.rstrip("\r"))
        key = field_of(match["label"]) if match else None
        if match is None or key is None or key == "message" or _header_word(match["label"]):
            out.append(line)
            continue
        label = match["label"].strip()
        if synonym:
            choices = [c for c in labels_for(key) if field_of(c) == key]
            if choices:
                label = choices[draw(st.integers(0, len(choices) - 1))]
        label = label.upper() if case == "upper" else label.lower() if case == "lower" else label
        sep = separator
        if sep == "\t" and " " in label:
            sep = ": "  # a tab alone after a multi-word label is no layout anyone writes
        out.append(f"{match['indent']}{label}{sep}{match['value']}")
    return "\n".join(out)


# Mail header words: in a quoted forward or Contact Form 7's "From: name <address>" line
# they are header syntax, not form labels another mailer would word differently.
_HEADER_WORDS = frozenset(
    {"from", "von", "van", "de", "to", "an", "aan", "subject", "betreff", "onderwerp", "objet"}
    | {"date", "datum", "sent", "gesendet", "verzonden", "cc", "reply-to", "antwort an"}
)


def _header_word(label: str) -> bool:
    return label.strip().lower() in _HEADER_WORDS


def reorder_fields(text: str, draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """Swap two adjacent known label lines inside a block (forms order fields freely)."""
    lines = text.split("\n")
    labelled = [i for i in range(len(lines) - 1) if _known(lines[i]) and _known(lines[i + 1])]
    if labelled:
        i = labelled[draw(st.integers(0, len(labelled) - 1))]
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return "\n".join(lines)


def _known(line: str) -> bool:
    match = _LABEL_LINE.match(line.rstrip("\r"))
    key = field_of(match["label"]) if match else None
    return key is not None and key != "message" and not _header_word(match["label"])


def wrap_long_lines(text: str) -> str:
    """Wrap the customer's message at 72 columns, as the customer's mail client does.

    Only lines of a message block (after a message label, up to a blank line)
    are wrapped: a portal's template does not break its own vehicle line.
    """
    out: list[str] = []
    in_message = False
    for line in text.split("\n"):
        match = _LABEL_LINE.match(line.rstrip("\r"))
        bare = line.strip().rstrip(":")
        if (match and field_of(match["label"]) == "message") or (
            bare and len(bare) < 40 and field_of(bare) == "message"
        ):
            in_message = True
        elif not line.strip():
            in_message = False
        if not in_message or len(line) <= 76 or line.lstrip().startswith(">"):
            out.append(line)
            continue
        current = ""
        # a "[text](url)" link is one word: an HTML-to-text generator never breaks it
        protected = _MARKDOWN.sub(lambda m: m[0].replace(" ", "\x00"), line)
        for word in protected.split(" "):
            if current and len(current) + 1 + len(word) > 72:
                out.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        out.append(current)
    return "\n".join(out).replace("\x00", " ")


_MARKDOWN = re.compile(r"\[[^\[\]\n]{1,200}\]\([^()\s]{1,2000}\)")
_LINK = re.compile(r"<a\b[^>]*?href=[\"']([^\"'>]{1,2000})[\"'][^>]*>(.*?)</a\s*>", re.I | re.S)


def html_as_text(markup: str) -> str:
    """A text alternative as HTML-to-text mailers write it: links kept as ``[text](url)``."""
    return html_to_text(_LINK.sub(lambda m: f"[{m[2]}]({m[1]})", markup))


# A text rendering loses a header-row table's or a definition list's pairing.
_PAIRED_LAYOUT = re.compile(r"<(?:th|dl)\b", re.IGNORECASE)
# Quoted forwards and replies: a layout rewrite of their header block is no layout anyone sends.
_QUOTED = re.compile(
    r"(?im)^[ >]*(?:-{2,}.{0,40}(?:forward|weitergeleit|ursprüngliche|original|oorspronkelijk)"
    r"|anfang der weitergeleiteten|begin forwarded|(?:von|from|van|de)\s*:.*@)"
)


def text_to_table(text: str) -> str:
    """The plain text as HTML: known label lines become table rows, the rest paragraphs."""
    rows: list[str] = []
    chunks: list[str] = []
    for line in text.split("\n"):
        match = _LABEL_LINE.match(line.rstrip("\r"))
        if match and _known(line):
            rows.append(
                f"<tr><td><b>{html.escape(match['label'].strip())}</b></td>"
                f"<td>{html.escape(match['value'])}</td></tr>"
            )
            continue
        if rows:
            chunks.append("<table>" + "".join(rows) + "</table>")
            rows = []
        chunks.append(f"{html.escape(line)}<br>" if line.strip() else "<br>")
    if rows:
        chunks.append("<table>" + "".join(rows) + "</table>")
    return "<html><body>\n" + "\n".join(chunks) + "\n</body></html>\n"


@st.composite
def mutations(
    draw: Callable[[st.SearchStrategy[Any]], Any], raw: bytes, ctx: ParseContext
) -> tuple[bytes, str]:
    """One rewritten mail and a description of the rewrites (for the failure message)."""
    msg = _load(raw)
    steps: list[str] = []
    charset = draw(st.sampled_from(["utf-8", "iso-8859-1", "windows-1252"]))
    cte = draw(st.sampled_from(["quoted-printable", "base64", "8bit"]))
    layout = draw(st.sampled_from(["labels", "reorder", "wrap", "table", "html-to-text", "none"]))
    steps.append(f"{layout}, {charset}/{cte}")
    for part in _text_parts(msg):
        subtype = part.get_content_subtype()
        text = str(part.get_content())
        if subtype == "plain" and layout == "labels":
            text = rewrite_labels(text, draw)
        elif subtype == "plain" and layout == "reorder":
            text = reorder_fields(text, draw)
        elif subtype == "plain" and layout == "wrap":
            text = wrap_long_lines(text)
        elif subtype == "plain" and layout == "table" and not msg.is_multipart():
            if not _QUOTED.search(text):
                text, subtype = text_to_table(text), "html"
        elif subtype == "html" and layout == "html-to-text" and not msg.is_multipart():
            if not _PAIRED_LAYOUT.search(text):
                text, subtype = html_as_text(text), "plain"
        _set_text(part, text, subtype, charset, cte)
    wrapper = draw(st.sampled_from(["none", "banner", "forward"]))
    if wrapper == "forward" and ctx.trusted_authserv_ids:
        wrapper = "none"  # see _forwarded: an attached original's verdict is not re-checked
    steps.append(wrapper)
    if wrapper == "banner":
        _add_banner(msg)
    elif wrapper == "forward":
        msg = _forwarded(msg, ctx)
    for number, part in enumerate(msg.walk()):
        if part.is_multipart() and not part.get_boundary():
            part.set_boundary(f"=_mutation_{number}")  # the stdlib would draw one at random
    return msg.as_bytes(policy=policy.SMTP), "; ".join(steps)


def _add_banner(msg: EmailMessage) -> None:
    """What a corporate mail gateway does: a subject tag and a warning paragraph on top."""
    subject = str(msg.get("Subject", ""))
    del msg["Subject"]
    msg["Subject"] = f"[EXTERN] {subject}"
    for part in _text_parts(msg):
        text = str(part.get_content())
        charset = part.get_content_charset() or "utf-8"
        cte = part.get("Content-Transfer-Encoding", "quoted-printable")
        if part.get_content_subtype() == "html":
            banner = (
                f'<table><tr><td style="background:#fc0">{html.escape(BANNER)}</td></tr></table>'
            )
            body = re.search(r"<body[^>]*>", text, re.IGNORECASE)
            text = text[: body.end()] + banner + text[body.end() :] if body else banner + text
            _set_text(part, text, "html", charset, cte)
        else:
            _set_text(part, f"{BANNER}\n\n{text}", "plain", charset, cte)


def _forwarded(original: EmailMessage, ctx: ParseContext) -> EmailMessage:
    """An employee forwards the mail as an attachment from the dealer's own domain.

    Not for fixtures about authentication verdicts: the dealer's MX checked the
    outer mail only, and an attached original's Authentication-Results are
    not re-read (see the report of issue 19: extract_lead could apply an inner
    *failure*, which no forger would add).
    """
    mailbox = sorted(ctx.dealer_addresses)[0]
    outer = EmailMessage()
    outer["From"] = f"Michael Huber <m.huber@{mailbox.rpartition('@')[2]}>"
    outer["To"] = mailbox
    outer["Subject"] = f"WG: {original.get('Subject', '')}"
    outer["Date"] = "Tue, 01 Dec 2026 11:00:00 +0100"
    outer.set_content("Bitte übernehmen.\n\nMichael Huber\nVerkauf, Tel. 08031 900123\n")
    outer.add_attachment(original)
    return outer


# --- which fixtures can be rewritten -----------------------------------------------------


@lru_cache(maxsize=1)
def _mutable() -> tuple[list[Path], list[str]]:
    """Fixtures whose extraction survives a plain stdlib round trip, and the others.

    Exempt are mails the stdlib cannot decode (an unknown charset label) or
    write back unchanged (a broken boundary, CR/LF in an encoded header).
    """
    keep: list[Path] = []
    exempt: list[str] = []
    for path in _fixtures():
        raw = path.read_bytes()
        ctx = _context(path)
        try:
            msg = _load(raw)
            for part in _text_parts(msg):
                part.get_content()  # an unknown charset label raises LookupError
            again = msg.as_bytes(policy=policy.SMTP)
            same = extraction(raw, ctx) == extraction(again, ctx)
        except Exception:  # noqa: BLE001 - a mail the stdlib cannot write back is exempt
            same = False
        if same:
            keep.append(path)
        else:
            exempt.append(_id(path))
    return keep, exempt


MUTABLE = _mutable()[0]


def test_most_fixtures_take_part() -> None:
    keep, exempt = _mutable()
    print(
        f"FIGURE P2 layout mutation: {len(keep)} fixtures rewritten, {len(exempt)} exempt "
        f"(MIME does not survive re-serialisation): {', '.join(exempt)}"
    )
    assert len(keep) >= 240
    assert len(exempt) <= len(keep) // 10


def test_the_rewrites_change_the_mail() -> None:
    """The property is not vacuous: the rewrites produce different bytes and layouts."""
    text = "Name: Eva Stein\nE-Mail: eva@mail.example\nTelefon: 0171 2233445\nNachricht: Hallo\n"
    table = text_to_table(text)
    assert "<td><b>Name</b></td><td>Eva Stein</td>" in table
    assert reorder_fields(text, lambda s: 0 if isinstance(s, st.SearchStrategy) else s) != text
    wrapped = wrap_long_lines("Nachricht:\n" + "x " * 60)
    assert max(len(line) for line in wrapped.split("\n")) <= 72


# Rewrites today's readers do not yet hold, with the reason; strict: a fix turns them red
# until they are taken off this list.
# Empty since the [text](url) links of HTML-to-text parts are read like the HTML's links
# (marketplace.link_markup) and the catalogue reads a link's words.
KNOWN_WEAK: dict[str, str] = {}


def _cases() -> list[Any]:
    return [
        pytest.param(
            path,
            id=_id(path),
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_WEAK[_id(path)])]
            if _id(path) in KNOWN_WEAK
            else [],
        )
        for path in MUTABLE
    ]


@pytest.mark.parametrize("path", _cases())
def test_layout_mutation_keeps_the_extraction(path: Path) -> None:
    raw = path.read_bytes()
    ctx = _context(path)
    expected = extraction(raw, ctx)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutations(raw, ctx))
    def check(mutated: tuple[bytes, str]) -> None:
        mail, steps = mutated
        got = extraction(mail, ctx)
        # of a non-lead only the verdict counts: nobody reads its fields
        keys = expected if expected["is_lead"] else ("is_lead", "source")
        changed = {k: (expected[k], got[k]) for k in keys if expected[k] != got[k]}
        assert not changed, f"{steps}: {changed}"

    check()
