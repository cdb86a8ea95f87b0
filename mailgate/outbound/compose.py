"""Composing outgoing mail: Jinja2 templates in, RFC 5322 bytes out.

Every header value that could carry customer data (display names, subjects)
is folded to a single line here, before the ``email`` package sees it: a CR/LF
in a customer's name must never become a header of its own (``Bcc:`` injection).
Threading headers are only folded beyond 998 characters because Python
otherwise RFC 2047-encodes long ``References``, which Outlook then ignores.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import encode_rfc2231, format_datetime, formataddr
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, DictLoader, Environment, PackageLoader

from mailgate.outbound.sandbox import MailSandbox
from mailgate.outbound.template_check import (
    TemplateProblem,
    check_template,
    problem_from,
    template_data,
)
from mailgate.outbound.template_loader import OverridesFirstLoader

log = logging.getLogger(__name__)

LOOP_HEADER = "X-Mailgate-Origin"
LANGUAGES = ("de", "en")
# Everything str.splitlines() or a mail parser might treat as a line break, plus NUL.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
# Dot-atom characters only: no quoted local parts, no SMTPUTF8 (our relay may lack it).
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*$")
_MIME_PART = r"[A-Za-z0-9!#$&^_.+-]{1,64}"
_MIMETYPE = re.compile(rf"^{_MIME_PART}/{_MIME_PART}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Attachment:
    """A file to attach.  ``content_id`` (without ``<>``) makes it an inline part the HTML
    refers to as ``cid:…`` (a pasted image, a signature logo): it then travels inside a
    ``multipart/related`` with the HTML, as the writer's mail client sent it."""

    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"
    content_id: str | None = None


def single_line(value: Any, limit: int = 900) -> str:
    """Fold control characters and line breaks (incl. U+2028/2029/0085) to spaces.

    A literal RFC 2047 encoded word in user data (``=?UTF-8?Q?=0A?=``) is broken
    up as well: Python's header folding decodes and re-emits it, and a decoded
    newline would end the header section (python/cpython#121650).
    """
    text = " ".join(_UNSAFE.sub(" ", str(value or "")).split())[:limit]
    return text.replace("=?", "= ?")


def _environment(override_dir: Path | None) -> Environment:
    """The sandbox (:mod:`.sandbox`) over the dealer's directory, then the packaged templates."""
    return _sandbox(OverridesFirstLoader(override_dir))


def checking_environment(sources: Mapping[str, str]) -> Environment:
    """A sandbox that sees ``sources`` (``{"de/notification.txt": text}``) over the package.

    The web editor checks and previews an edit with it before anything is
    written: the same environment class and filters as sending, no files.
    """
    return _sandbox(
        ChoiceLoader([DictLoader(dict(sources)), PackageLoader("mailgate.templates", "email")])
    )


def _sandbox(loader: Any) -> Environment:
    env = MailSandbox(loader)
    env.filters["price"] = format_price
    return env


def format_price(value: Any, language: str = "de") -> str:
    """``24.890 €`` / ``€24,890``; anything unparseable is shown as it came."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value if value is not None else "")
    if number != number or number in (float("inf"), float("-inf")):
        return str(value)
    grouped = f"{number:,.0f}"
    if language == "en":
        return f"€{grouped}"
    return grouped.replace(",", ".") + " €"


_ENVIRONMENTS: dict[Path | None, Environment] = {}


def environment(override_dir: Path | None = None) -> Environment:
    """One cached Jinja2 environment per override directory (templates compile once)."""
    if override_dir not in _ENVIRONMENTS:
        _ENVIRONMENTS[override_dir] = _environment(override_dir)
    return _ENVIRONMENTS[override_dir]


_OVERRIDE_NAME = re.compile(r"^(?P<lang>[a-z]{2})/(?P<name>[a-z0-9_]+)\.(subject\.txt|txt|html)$")
PARTS = ("subject.txt", "txt", "html")


def check_override_problems(override_dir: Path) -> list[TemplateProblem]:
    """Problems with a dealer's template directory; empty when every file may be used.

    Each file must mirror a packaged template (``de/notification.html``),
    parse in the sandbox, use only its template's variables and — where a
    sample context exists — render with it under StrictUndefined, so an
    unknown variable is caught here and not in a mail.
    """
    from mailgate.outbound.samples import sample_context

    if not override_dir.is_dir():
        return [TemplateProblem(str(override_dir), "error", "not a directory")]
    packaged = set(environment(None).list_templates())
    env = _environment(override_dir)  # fresh: the cache may hold an older version
    problems: list[TemplateProblem] = []
    for path in sorted(p for p in override_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(override_dir).as_posix()
        match = _OVERRIDE_NAME.match(relative)
        if not match or match.group("lang") not in LANGUAGES:
            problems.append(TemplateProblem(relative, "name"))
            continue
        if relative not in packaged:
            problems.append(TemplateProblem(relative, "unknown_template"))
            continue
        name = match.group("name")
        problems += check_template(env, relative, name, sample_context(name))
    return problems


def check_overrides(override_dir: Path) -> list[str]:
    """:func:`check_override_problems` in English, one line each (import, CLI, doctor)."""
    return [str(problem) for problem in check_override_problems(override_dir)]


def render_mail(
    name: str, language: str, context: Mapping[str, Any], override_dir: Path | None = None
) -> RenderedMail:
    """Render ``<language>/<name>.subject.txt``, ``.txt`` and ``.html``.

    ``override_dir`` mirrors the package layout (``de/notification.txt``…) and
    wins file by file, so a dealer can replace one template and keep the rest.
    A language we have no templates for falls back to German, the product's
    home language, rather than failing the mail.  Every template renders in
    the sandbox and sees only its allowlisted variables (:func:`template_data`).
    """
    language = normalize_language(language)
    data = template_data(name, context)
    subject, text, html = (
        _render_part(f"{language}/{name}.{part}", data, override_dir) for part in PARTS
    )
    return RenderedMail(single_line(subject, 300), text, html)


def _render_part(relative: str, data: Mapping[str, Any], override_dir: Path | None) -> str:
    """One file, the dealer's if there is one; a broken one falls back to the packaged.

    Why fall back: the override was checked against sample data when it was
    saved, but real data (or a file edited on disk since) can still break
    it, and the salesperson's notification must not be lost for a wording.
    The error is logged, and the admin sees the file marked as broken in the
    template list and its problem in the editor (both run the same check).
    """
    if override_dir is not None and (override_dir / relative).is_file():
        try:
            return environment(override_dir).get_template(relative).render(data)
        except Exception as exc:  # noqa: BLE001 - any failure of a dealer's file falls back
            log.error(
                "mail template %s in %s is broken, the packaged template is sent instead: %s",
                relative,
                override_dir,
                problem_from(relative, exc),
            )
    return environment(None).get_template(relative).render(data)


def normalize_language(language: str | None) -> str:
    """``"en-GB"``/``"EN"`` -> ``"en"``; unknown -> ``"de"``."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else "de"


def new_message_id(domain: str) -> str:
    """A fresh Message-ID: 128 random bits at the dealer's domain.

    Never derived from row ids, counters, keys or the time: two installations
    (or one restored from a backup, whose ids and keys start over) would
    otherwise hand out the same id for different mails, and providers drop
    a mail whose id they have seen.  The id is chosen once, when the mail is
    enqueued, and stored with it, so a re-send after a crash still carries
    the same id and receivers recognise the copy.
    """
    return f"<{secrets.token_hex(16)}@{safe_domain(domain)}>"


def safe_domain(domain: str) -> str:
    """A domain usable inside a Message-ID; never fails (falls back to ``localhost``)."""
    try:
        return _ascii_domain(domain)
    except ValueError:
        return "localhost"


def _ascii_domain(domain: str) -> str:
    domain = (domain or "").strip().rstrip(".")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")  # müller.example -> xn--...
        except UnicodeError as exc:
            raise ValueError(f"not a usable mail domain: {domain!r}") from exc
    if not _DOMAIN.match(domain):
        raise ValueError(f"not a usable mail domain: {domain!r}")
    return domain.lower()


def check_address(addr: str) -> str:
    """Return ``local@domain`` (IDNA domain) or raise ValueError.

    Used for header addresses and SMTP envelope addresses alike: a CR/LF here
    would inject a header or an SMTP command, a non-ASCII local part would need
    SMTPUTF8, which we do not assume the relay speaks.
    """
    if not isinstance(addr, str) or _UNSAFE.search(addr):
        raise ValueError(f"not a usable mail address: {addr!r}")
    local, at, domain = addr.strip().rpartition("@")
    if not at or not _LOCAL.match(local):
        raise ValueError(f"not a usable mail address: {addr!r}")
    return f"{local}@{_ascii_domain(domain)}"


def address(display: str, addr: str) -> str:
    """A header address, RFC 2047-encoded display name; ValueError if not ``local@domain``."""
    return formataddr((single_line(display, 200), check_address(addr)), charset="utf-8")


def _header_text(value: str) -> str:
    """An unstructured header value (already single-line), encoded if not ASCII."""
    return value if value.isascii() else Header(value, "utf-8").encode(maxlinelen=76)


def build_message(
    *,
    from_name: str,
    from_address: str,
    to: Sequence[tuple[str, str]],
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    reply_to: Sequence[tuple[str, str]] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    attachments: Sequence[Attachment] = (),
    extra_headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
    automatic: bool = True,
) -> bytes:
    """A complete mail (text + HTML alternative, attachments) as bytes ready to send.

    Raises ValueError for an unusable address or header name; user text in
    display names, subject and header values is folded, never rejected.

    Serialised directly (headers encoded by ``email.header``/``formataddr``,
    bodies by the C-coded ``binascii`` encoders) rather than through the
    ``email`` generator: the generator re-walked and re-folded every part,
    which made composing a notification cost more than parsing the inquiry.
    Safety does not depend on a policy: every value is single-line before it
    gets here, and the structure (boundaries, CRLF) is ours.
    """
    if not to:
        raise ValueError("a mail needs at least one recipient")
    headers: list[tuple[str, str]] = [
        ("Message-ID", single_line(message_id, 300)),
        ("Date", format_datetime((date or datetime.now(UTC)).astimezone(UTC))),
        ("From", address(from_name, from_address)),
        ("To", ", ".join(address(name, addr) for name, addr in to)),
    ]
    if reply_to:
        headers.append(("Reply-To", ", ".join(address(n, a) for n, a in reply_to)))
    headers.append(("Subject", _header_text(single_line(subject, 300))))
    if in_reply_to:
        headers.append(("In-Reply-To", single_line(in_reply_to, 300)))
    if references:
        headers.append(("References", " ".join(single_line(r, 300) for r in references)))
    if automatic:  # a relayed human reply is not auto-generated (RFC 3834 section 5)
        headers += [
            ("Auto-Submitted", "auto-generated"),  # RFC 3834: no auto-replies to us
            ("X-Auto-Response-Suppress", "All"),  # the same for Exchange/Outlook
        ]
    headers.append((LOOP_HEADER, "1"))  # the inbound classifier drops mail carrying it
    for name, value in (extra_headers or {}).items():
        if not _HEADER_NAME.match(name) or name.lower() in _OWN_HEADERS:
            raise ValueError(f"bad extra header name {name!r}")
        headers.append((name, _header_text(single_line(value))))

    inline = [a for a in attachments if html is not None and _content_id(a.content_id)]
    files = [a for a in attachments if a not in inline]
    body = _text_part(text, "plain")
    if html is not None:
        html_part = _text_part(html, "html")
        if inline:  # RFC 2387: the HTML first, then the images it names by cid:
            html_part = _multipart(
                "related",
                [html_part, *(_attachment_part(item) for item in inline)],
                'type="text/html"',
            )
        body = _multipart("alternative", [body, html_part])
    if files:
        body = _multipart("mixed", [body, *(_attachment_part(item) for item in files)])
    headers.append(("MIME-Version", "1.0"))
    return _serialize(headers + body.headers, body.payload)


@dataclass(frozen=True)
class _Part:
    """A MIME part as its own header fields and its already encoded body bytes."""

    headers: list[tuple[str, str]]
    payload: bytes


def _serialize(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """Header fields, a blank line, the body: CRLF line ends, lines within 998 octets."""
    lines = [_fold(f"{name}: {value}") for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + payload


def _fold(field: str) -> str:
    """Keep an encoder's own folds (CRLF + space) and break any line beyond 998 at a space."""
    out = []
    for line in field.replace("\r\n", "\n").split("\n"):
        while len(line) > 998:
            cut = line.rfind(" ", 1, 998)
            if cut <= 0:
                break  # one unbreakable token; the caller's values never get this long
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return "\r\n".join(out)


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _multipart(subtype: str, parts: Sequence[_Part], params: str = "") -> _Part:
    """Join parts under a random boundary that cannot occur in QP, base64 or our 7bit text."""
    boundary = "=_mg_" + secrets.token_hex(16)
    marker = b"--" + boundary.encode("ascii")
    chunks = []
    for part in parts:
        chunks.append(marker + b"\r\n" + _serialize(part.headers, part.payload) + b"\r\n")
    body = b"".join(chunks) + marker + b"--\r\n"
    extra = f"; {params}" if params else ""
    return _Part([("Content-Type", f'multipart/{subtype}; boundary="{boundary}"{extra}')], body)


_CONTENT_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{1,250}$")


def _content_id(value: str | None) -> str | None:
    """A Content-ID usable in a header (``msg-id`` characters only), or None.

    It comes from a mail someone sent us: anything with a space, a quote or
    a line break would be a header injection, so it is not used at all.
    """
    if not isinstance(value, str):
        return None
    value = value.strip().strip("<>")
    return value if _CONTENT_ID.match(value) else None


def _text_part(text: str, subtype: str) -> _Part:
    """UTF-8 text: 7bit when plain ASCII with short lines, else quoted-printable.

    No reliance on the relay's 8BITMIME; QP lines stay within 76 characters.
    """
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8", "replace")
    headers = [("Content-Type", f'text/{subtype}; charset="utf-8"')]
    if data.isascii() and all(len(line) <= 900 for line in data.split(b"\n")):
        headers.append(("Content-Transfer-Encoding", "7bit"))
        return _Part(headers, _crlf(data))
    headers.append(("Content-Transfer-Encoding", "quoted-printable"))
    return _Part(headers, _crlf(binascii.b2a_qp(data, istext=True)))


_OWN_HEADERS = frozenset(
    name.lower()
    for name in (
        "Message-ID",
        "Date",
        "From",
        "To",
        "Cc",
        "Bcc",
        "Reply-To",
        "Subject",
        "In-Reply-To",
        "References",
        "Auto-Submitted",
        "X-Auto-Response-Suppress",
        LOOP_HEADER,
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)


def _attachment_part(item: Attachment) -> _Part:
    """Attach bytes as base64, whatever they contain.

    ``message/rfc822`` parts may not be base64-encoded (RFC 2046 5.2.1), and
    an original mail is stored byte for byte, possibly with NULs, bare CRs or
    2000-character lines; so an attached mail travels as
    ``application/octet-stream`` with an ``.eml`` name, which mail clients open
    the same way and which can never make composing fail.
    """
    mimetype = item.mimetype.strip().lower() if isinstance(item.mimetype, str) else ""
    filename = single_line(item.filename, 200) or "attachment"
    if mimetype.startswith("message/"):
        mimetype = "application/octet-stream"
        if not filename.lower().endswith(".eml"):
            filename += ".eml"
    if not _MIMETYPE.match(mimetype) or mimetype.startswith("multipart/"):
        mimetype = "application/octet-stream"
    if filename.isascii():
        disposition = 'attachment; filename="{}"'.format(
            filename.replace("\\", "_").replace('"', "_")
        )
    else:
        disposition = "attachment; filename*=" + encode_rfc2231(filename, "utf-8")
    headers = [("Content-Type", mimetype), ("Content-Transfer-Encoding", "base64")]
    content_id = _content_id(item.content_id)
    if content_id:
        headers.append(("Content-ID", f"<{content_id}>"))
        disposition = "inline" + disposition[len("attachment") :]
    headers.append(("Content-Disposition", disposition))
    return _Part(headers, _crlf(base64.encodebytes(bytes(item.content))))
