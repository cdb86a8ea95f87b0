"""Shared MIME handling for every parser: load a mail safely, get its text.

Python's ``email`` package raises on several real-world inputs (an encoded CR/LF
in a display name, unknown charset labels, boundaries that never match), so
everything here catches, degrades and records a warning instead.  Shape caps
are checked on the raw bytes *before* the MIME parser runs, so no input can make
parsing blow up in time or memory.
"""

from __future__ import annotations

import email
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.utils import getaddresses
from functools import lru_cache

MAX_HEADER_SECTION = 256 * 1024
MAX_SINGLE_HEADER = 64 * 1024
MAX_PARTS = 200
MAX_MULTIPARTS = 20
MAX_NESTED_MESSAGES = 10
# Content-* fields anywhere in the mail (part headers too): the stdlib parses
# each one it reads at some 30 us per byte of crafted input, so both a field
# and their sum are capped.  Real mails: under 400 bytes a field.
MAX_MIME_FIELD = 4 * 1024
MAX_MIME_FIELDS_TOTAL = 24 * 1024
MAX_TEXT_CHARS = 200_000

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u0085\u2028\u2029]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
# on the lowered mail with a "\n" in front (see check_shape); the match has the "\n"
_MIME_FIELD = re.compile(rb"\ncontent-[\w-]*[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*")


class ShapeError(ValueError):
    """The raw mail exceeds a structural cap; it is quarantined, not parsed."""


def check_shape(raw: bytes) -> None:
    """Raise :class:`ShapeError` if the mail is too big or too deep to parse safely."""
    match = _HEADER_END.search(raw, 0, MAX_HEADER_SECTION + 4)
    if match is None and len(raw) > MAX_HEADER_SECTION:
        raise ShapeError(f"header section larger than {MAX_HEADER_SECTION} bytes")
    head = raw[: match.start()] if match else raw
    longest = max((len(line) for line in re.split(rb"\r?\n(?![ \t])", head)), default=0)
    if longest > MAX_SINGLE_HEADER:
        raise ShapeError(f"a header field is longer than {MAX_SINGLE_HEADER} bytes")
    # bytes.count instead of regex findall (the same counts, several times faster):
    # lines starting with "--", and the two type names in any letter case.
    if raw.count(b"\n--") + raw.startswith(b"--") > 2 * MAX_PARTS + 2:
        raise ShapeError(f"more than {MAX_PARTS} MIME parts")
    lowered = raw.lower()
    if lowered.count(b"multipart/") > MAX_MULTIPARTS:
        raise ShapeError(f"more than {MAX_MULTIPARTS} nested multipart containers")
    if lowered.count(b"message/rfc822") + lowered.count(b"message/global") > MAX_NESTED_MESSAGES:
        raise ShapeError(f"more than {MAX_NESTED_MESSAGES} attached messages")
    _check_mime_fields(b"\n" + lowered)


def _check_mime_fields(lowered: bytes) -> None:
    """Cap the Content-* fields of the top level and of every part (see MAX_MIME_FIELD)."""
    total = 0
    for match in _MIME_FIELD.finditer(lowered):
        size = match.end() - match.start() - 1
        if size > MAX_MIME_FIELD:
            raise ShapeError(f"a Content-* header field is longer than {MAX_MIME_FIELD} bytes")
        total += size
        if total > MAX_MIME_FIELDS_TOTAL:
            raise ShapeError(f"Content-* header fields longer than {MAX_MIME_FIELDS_TOTAL} bytes")


_TEXT_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str) -> str:
    """Multi-line text without NULs and other control characters (tabs and newlines stay).

    PostgreSQL refuses NUL in text columns, and no customer message needs one.
    """
    return _TEXT_CTRL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def clean_line(value: str | None, limit: int = 998) -> str | None:
    """A single-line value: control characters and line breaks folded to spaces."""
    if value is None:
        return None
    text = " ".join(_CTRL.sub(" ", str(value)).split())
    return text[:limit] or None


@dataclass
class MailView:
    """The parts of a mail every parser needs, decoded once."""

    message: Message
    subject: str | None
    from_addresses: list[tuple[str, str]]
    reply_to: list[tuple[str, str]]
    text: str
    html: str | None
    warnings: list[str] = field(default_factory=list)
    # Results of pure checks on this view (non-lead verdict, lowered text ...):
    # several stages ask the same question of the same mail.
    memo: dict[object, object] = field(default_factory=dict, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """``safe_header`` once per name: every matcher and check asks for the same few."""
        key = ("header", name.lower())
        if key in self.memo:
            return self.memo[key]  # type: ignore[return-value]
        present = self.memo.get("header names")
        if present is None:
            # most headers asked for are absent (X-Autoreply, List-Id …): one pass over the
            # names instead of one per question (Message.get walks every header each time)
            present = self.memo["header names"] = frozenset(
                str(k).lower() for k in self.message.keys()
            )
        if key[1] not in present:  # type: ignore[operator]
            return None
        noted = len(self.warnings)
        value = safe_header(self.message, name, self.warnings)
        if len(self.warnings) == noted:  # an unreadable header warns on every read, as before
            self.memo[key] = value
        return value


_HEADER_REGISTRY = HeaderRegistry()
_CACHEABLE_HEADER = 1000


# Every header read as unstructured text: the fallback for values the stdlib's
# structured parsers (addresses, MIME parameters) cannot handle in bounded time.
_PLAIN_REGISTRY = HeaderRegistry(use_default_map=False)


@lru_cache(maxsize=4096)
def _cached_header(name: str, value: str) -> BaseHeader:
    """The structured header, or the value as text where the stdlib's parser breaks.

    The parsers run inside ``email.message_from_bytes`` (the feed parser reads
    ``Content-Type``), so an exception here would make the whole mail unloadable.
    Known cases (found by fuzzing, RELIABILITY.md M4): hundreds of nested
    comments ``((((`` (RecursionError), an RFC 2231 parameter name without a
    value ``; charset*`` (IndexError), a NUL in an RFC 2231 charset
    ``; title*=us\\0ascii''x`` (ValueError).
    """
    try:
        return _HEADER_REGISTRY(name, value)
    except (RecursionError, IndexError, ValueError):
        return _PLAIN_REGISTRY(name, value)


def _header_factory(name: str, value: str) -> BaseHeader:
    """The stdlib's header objects, built once per distinct short (name, value).

    ``policy.default`` re-parses a header on every access, and the MIME walk
    asks for ``Content-Type`` many times per part: without the cache that
    parsing is most of a mail's parse time.  Header objects are immutable
    ``str`` subclasses, so sharing one is safe.

    Values longer than ``_CACHEABLE_HEADER`` are read as unstructured text
    (a linear parse): the structured parsers are superlinear on crafted input
    (60 KB of commas in ``To`` took 40 s, 30,000 ``;`` in ``Content-Type``
    88 s), and no real address list or MIME header needs more.  ``Message``'s
    own accessors (content type, parameters, filename) work on the text.
    """
    if len(value) > _CACHEABLE_HEADER:
        return _plain_header(name, value)
    return _cached_header(name, value)


@lru_cache(maxsize=16)
def _plain_header(name: str, value: str) -> BaseHeader:
    """A long value read as text, once per mail (the MIME walk asks several times)."""
    return _PLAIN_REGISTRY(name, value)


class _SafeParams:
    """``get_param`` that never hands the stdlib an RFC 2231 charset label with a NUL.

    ``boundary*=us\\0ascii''x`` makes ``str(bytes, "us\\0ascii")`` raise
    ``ValueError`` in ``get_boundary`` (which the feed parser calls: the mail
    would not load at all), ``get_content_charset`` and ``get_filename``; the
    stdlib catches only ``LookupError`` there.  Such a label is dropped, so the
    value decodes as US-ASCII like one without a label (found by atheris, M4).
    """

    def get_param(
        self, param: str, failobj: object = None, header: str = "content-type", unquote: bool = True
    ) -> object:
        value = super().get_param(param, failobj, header, unquote)  # type: ignore[misc]
        if isinstance(value, tuple) and value[0] and "\x00" in value[0]:
            return (None, *value[1:])
        return value


class _SafeEmailMessage(_SafeParams, EmailMessage):
    """The message class of :data:`PARSE_POLICY`."""


class _SafeCompatMessage(_SafeParams, Message):
    """The message class of :data:`SALVAGE_POLICY`."""


PARSE_POLICY = policy.default.clone(
    header_factory=_header_factory, message_factory=_SafeEmailMessage
)
# compat32 for the parts recovered from a multipart whose boundary never matched
SALVAGE_POLICY = policy.compat32.clone(message_factory=_SafeCompatMessage)


def load(raw: bytes) -> MailView:
    """Parse raw bytes into a :class:`MailView`; never raises on content."""
    msg = email.message_from_bytes(raw, policy=PARSE_POLICY)
    return view_of(msg)


def view_of(msg: Message, warnings: list[str] | None = None) -> MailView:
    """The :class:`MailView` of an already parsed message (also an attached one)."""
    warnings = [] if warnings is None else warnings
    if msg.defects:
        warnings.append(
            "mime defects: " + ", ".join(sorted({type(d).__name__ for d in msg.defects}))
        )
    subject = strip_subject_tags(clean_line(safe_header(msg, "Subject", warnings)))
    plain, html_body = _bodies(msg, warnings)
    text = _choose_text(plain, html_body)
    return MailView(
        message=msg,
        subject=subject,
        from_addresses=safe_addresses(msg, "From", warnings),
        reply_to=safe_addresses(msg, "Reply-To", warnings),
        text=remove_banners(clean_text(text))[:MAX_TEXT_CHARS],
        html=html_body,
        warnings=warnings,
    )


# --- headers -----------------------------------------------------------------

_SUBJECT_TAG = re.compile(
    r"^\s*(?:\[\s*(?:extern|external|externe?\s*mail|ext)\s*\]|\*\s*(?:extern|external)\s*\*"
    r"|\(\s*(?:extern|external)\s*\))\s*:?\s*",
    re.IGNORECASE,
)
_SUBJECT_TAG_ANYWHERE = re.compile(
    r"\s*(?:\[\s*(?:extern|external)\s*\]|\*\s*(?:extern|external)\s*\*)\s*", re.IGNORECASE
)


def strip_subject_tags(subject: str | None) -> str | None:
    """The subject without gateway tags such as ``[EXTERN]`` / ``*EXTERNAL*``.

    Corporate gateways prepend them (also after ``WG:``), and they would break
    every subject-based signal otherwise.
    """
    if not subject:
        return subject
    text = _SUBJECT_TAG_ANYWHERE.sub(" ", subject)
    return clean_line(_SUBJECT_TAG.sub("", text))


_SURROGATE = re.compile("[\udc80-\udcff]")


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes as text: the declared charset, else UTF-8, else Windows-1252 (never fails).

    Windows-1252 is a superset of the printable ISO-8859-1 range and maps 0x80 to
    ``€``, which Outlook writes, so it is the right last resort for 8-bit mail.
    """
    for candidate in (charset, "utf-8", "windows-1252"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):  # ValueError: a NUL in the label
            continue
    return data.decode("latin-1")


def decode_words(raw: str) -> str:
    """A raw header value decoded: RFC 2047 words and raw 8-bit bytes, any charset label.

    Works on the *raw* value so that neither an unknown charset label nor an
    encoded CR/LF (which ``policy.default`` refuses with ``ValueError``) can stop
    us; the result may contain line breaks, callers fold them with ``clean_line``.
    """
    if _SURROGATE.search(raw):
        raw = decode_bytes(raw.encode("utf-8", "surrogateescape"))
    if "=?" not in raw:
        return raw
    try:
        chunks = decode_header(raw)
    except (HeaderParseError, ValueError, LookupError):
        return raw
    return "".join(
        decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk
        for chunk, charset in chunks
    )


def raw_header(msg: Message, name: str) -> str | None:
    """The first raw (undecoded, unfolded) value of header ``name``."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return re.sub(r"\r?\n[ \t]", " ", str(value))
    return None


def safe_header(msg: Message, name: str, warnings: list[str]) -> str | None:
    """A header's decoded value; on a policy error or undecodable bytes, our own decoding."""
    try:
        value = msg.get(name)
        if value is None:
            return None
        text = str(value)
        if "\ufffd" not in text and not _SURROGATE.search(text):
            return text
    except (ValueError, TypeError, LookupError, IndexError, AttributeError) as exc:
        warnings.append(f"unreadable {name} header: {type(exc).__name__}")
    raw_value = raw_header(msg, name)
    return None if raw_value is None else clean_line(decode_words(raw_value))


def safe_addresses(msg: Message, name: str, warnings: list[str]) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs, single-line, lower-cased domain part.

    Addresses are split on the *raw* value and each display name is decoded on
    its own, so an encoded ``\\r\\nBcc: x@y`` inside a display name stays part
    of that name instead of becoming an address.
    """
    try:
        raw_value = raw_header(msg, name)
    except Exception:  # noqa: BLE001 - a header we cannot even list: no addresses
        warnings.append(f"unreadable {name} header")
        return []
    if not raw_value:
        return []
    if _SURROGATE.search(raw_value):
        raw_value = decode_bytes(raw_value.encode("utf-8", "surrogateescape"))
    try:
        found = getaddresses([raw_value[:MAX_SINGLE_HEADER]])
    except RecursionError:  # hundreds of nested comments "((((": no addresses
        warnings.append(f"unreadable {name} header")
        return []
    pairs = []
    for display, address in found:
        address = (clean_line(address) or "").strip("<>")
        if "@" not in address or " " in address:
            continue
        local, _, domain = address.rpartition("@")
        decoded = decode_words(display)
        if "\n" in decoded or "\r" in decoded:
            warnings.append(f"line break in the {name} display name removed")
        name_text = clean_line(decoded) or ""
        pairs.append((name_text, f"{local}@{domain.lower()}"))
    return pairs


# --- bodies ------------------------------------------------------------------


def leaf_parts(msg: Message) -> Iterator[Message]:
    """Non-multipart parts, *not* descending into attached messages.

    An attached ``message/rfc822`` (a forward as attachment, the original inside
    a bounce) is a different mail: its text must never be taken for this one's.
    """
    stack = [msg]
    while stack:
        part = stack.pop()
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            stack.extend(reversed(part.get_payload()))  # type: ignore[arg-type]
        else:
            yield part


def _bodies(msg: Message, warnings: list[str]) -> tuple[str | None, str | None]:
    plain: str | None = None
    html_body: str | None = None
    for part in leaf_parts(msg):
        ctype = part.get_content_type()
        if ctype.startswith("multipart/") and isinstance(part.get_payload(), str):
            raw_payload = part.get_payload(decode=True)
            payload = (
                raw_payload.decode("utf-8", "surrogateescape")
                if isinstance(raw_payload, bytes)
                else str(part.get_payload())
            )
            salvaged = _salvage_multipart(payload, warnings)
            plain = plain or salvaged[0]
            html_body = html_body or salvaged[1]
            continue
        if ctype not in ("text/plain", "text/html"):
            continue
        if part.get_content_disposition() == "attachment":
            continue
        text = decode_part(part, warnings)
        if ctype == "text/plain" and plain is None:
            plain = text
        elif ctype == "text/html" and html_body is None:
            html_body = text
    return plain, html_body


def _salvage_multipart(payload: str, warnings: list[str]) -> tuple[str | None, str | None]:
    """Text from a multipart whose boundary never matched: split on any ``--`` line.

    Best effort for hand-made mailers that declare one boundary and use another.
    """
    warnings.append("multipart boundary not found: parts recovered heuristically")
    plain = html_body = loose = None
    chunks = re.split(r"(?m)^--[^\s]{1,200}\s*$", payload)
    for chunk in chunks[:MAX_PARTS]:
        head, sep, body = chunk.lstrip("\r\n").partition("\n\n")
        if not sep:
            head, sep, body = chunk.lstrip("\r\n").partition("\r\n\r\n")
        if sep and re.match(r"(?i)[\w-]+:", head):
            data = chunk.lstrip("\r\n").encode("utf-8", "surrogateescape")
            part = email.message_from_bytes(data, policy=SALVAGE_POLICY)
            ctype = part.get_content_type()
            if ctype == "text/plain" and plain is None:
                plain = decode_part(part, warnings)
            elif ctype == "text/html" and html_body is None:
                html_body = decode_part(part, warnings)
        elif chunk.strip() and loose is None:
            loose = decode_bytes(chunk.encode("utf-8", "surrogateescape"))
    if plain is None and html_body is None:
        plain = loose
    if plain is None and html_body is None:
        plain = decode_bytes(payload.encode("utf-8", "surrogateescape"))
    return plain, html_body


_LABEL_HINT = re.compile(r"(?m)^[ \t]*[^\s:][^:\n]{0,40}:[ \t]*\S")


def _choose_text(plain: str | None, html_body: str | None) -> str:
    """The plain part, unless it is a stub ("view in browser") and the HTML has the fields."""
    if plain and plain.strip():
        if not html_body or len(plain) > 600:
            return plain
        html_text = html_to_text(html_body)
        if len(_LABEL_HINT.findall(html_text)) > len(_LABEL_HINT.findall(plain)) + 1:
            return html_text
        return plain
    return html_to_text(html_body or "")


def decode_part(part: Message, warnings: list[str]) -> str:
    """Decode a text part, falling back through sensible charsets on bad labels."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken transfer encodings: take the raw text
        warnings.append("undecodable transfer encoding")
        payload = str(part.get_payload()).encode("utf-8", "surrogateescape")
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001 - a broken Content-Type parameter
        charset = None
    if charset:
        try:
            return payload.decode(charset)
        except (LookupError, ValueError):  # ValueError: a NUL in the label
            warnings.append(f"charset {charset!r} did not decode; fell back")
    return decode_bytes(payload)


# --- banners -----------------------------------------------------------------

_BANNER_START = re.compile(
    r"(?im)^[ \t>*]*(?:\[?(?:caution|warning|achtung|vorsicht|warnung|externe?\s+e-?mail"
    r"|let op|attention|extern)\]?\s*[:!-]?.{0,40}?"
    r"(?:originated from outside|from outside (?:of )?(?:the|your) organi[sz]ation"
    r"|stammt von au(?:ß|ss)erhalb|von einem externen absender"
    r"|au(?:ß|ss)erhalb (?:der|unserer|ihrer) organisation|externer absender"
    r"|afkomstig van buiten|buiten de organisatie"
    r"|provient de l.ext[ée]rieur|en dehors de (?:votre|l.) ?organisation)).*$"
)


def remove_banners(text: str) -> str:
    """Drop the warning paragraph a corporate gateway injects ("CAUTION: … outside …").

    The banner is one paragraph (up to the next blank line) near the top of the
    body; it is neither the customer's text nor a field.
    """
    if not text:
        return text
    head = text[:3000]
    match = _BANNER_START.search(head)
    if not match:
        return text
    end = head.find("\n\n", match.start())
    end = len(head) if end == -1 else end
    return text[: match.start()] + text[end:].lstrip("\n")


_HIDDEN_OPEN = re.compile(r"<!--|<(script|style|head|title)\b", re.IGNORECASE)
_BREAKS = re.compile(
    r"<\s*(br|/p|/div|/tr|/h\d|/li|p|div|tr|li|/table|table)\b[^>]*>", re.IGNORECASE
)
_CELL = re.compile(r"</t[dh]\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")


def _drop_hidden(markup: str) -> str:
    """Remove comments, scripts, styles and the head in one linear pass.

    A regex like ``<script.*?</script>`` rescans to the end for every unclosed
    opening tag, which makes crafted HTML quadratic; here an unclosed one
    simply hides the rest of the document.
    """
    out: list[str] = []
    pos = 0
    lowered = markup.lower()
    while True:
        match = _HIDDEN_OPEN.search(markup, pos)
        if match is None:
            out.append(markup[pos:])
            break
        out.append(markup[pos : match.start()])
        closer = "-->" if match.group(1) is None else f"</{match.group(1).lower()}"
        end = lowered.find(closer, match.end())
        if end == -1:
            break
        close_end = markup.find(">", end + len(closer) - 1)
        pos = len(markup) if close_end == -1 else close_end + 1
        out.append(" ")
    return "".join(out)


def html_to_text(markup: str) -> str:
    """Plain text from HTML: scripts dropped, rows become lines, cells ``label: value``."""
    text = _drop_hidden(markup)
    text = re.sub(r"[\r\n]+", " ", text)
    text = _CELL.sub(" \t", text)
    text = _BREAKS.sub("\n", text)
    text = html.unescape(_TAG.sub("", text)).replace("\u00a0", " ")
    lines = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        if len(cells) == 2 and not cells[0].endswith(":") and len(cells[0]) <= 60:
            cells[0] += ":"
        lines.append(" ".join(cells))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
