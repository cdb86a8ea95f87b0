"""Composing outgoing mail: Jinja2 templates in, RFC 5322 bytes out.

Every header value that could carry customer data (display names, subjects)
is folded to a single line here, before the ``email`` package sees it: a CR/LF
in a customer's name must never become a header of its own (``Bcc:`` injection).
Threading headers are serialised with ``max_line_length=998`` because Python
otherwise RFC 2047-encodes long ``References``, which Outlook then ignores.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

SERIALIZE_POLICY = policy.SMTP.clone(max_line_length=998)
LOOP_HEADER = "X-Mailgate-Origin"
LANGUAGES = ("de", "en")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_ADDR = re.compile(r"^[^@\s\"<>()\[\],;:\\]+@[A-Za-z0-9.-]+$")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"


def single_line(value: Any, limit: int = 900) -> str:
    """Fold control characters and line breaks (incl. U+2028/2029/0085) to spaces.

    A literal RFC 2047 encoded word in user data (``=?UTF-8?Q?=0A?=``) is broken
    up as well: Python's header folding decodes and re-emits it, and a decoded
    newline would end the header section (python/cpython#121650).
    """
    text = " ".join(_UNSAFE.sub(" ", str(value or "")).split())[:limit]
    return text.replace("=?", "= ?")


def _environment(override_dir: Path | None) -> Environment:
    loaders: list[Any] = [PackageLoader("mailgate.templates", "email")]
    if override_dir is not None:
        loaders.insert(0, FileSystemLoader(str(override_dir)))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


_ENVIRONMENTS: dict[Path | None, Environment] = {}


def environment(override_dir: Path | None = None) -> Environment:
    """One cached Jinja2 environment per override directory (templates compile once)."""
    if override_dir not in _ENVIRONMENTS:
        _ENVIRONMENTS[override_dir] = _environment(override_dir)
    return _ENVIRONMENTS[override_dir]


def render_mail(
    name: str, language: str, context: Mapping[str, Any], override_dir: Path | None = None
) -> RenderedMail:
    """Render ``<language>/<name>.subject.txt``, ``.txt`` and ``.html``."""
    language = language if language in LANGUAGES else "de"
    env = environment(override_dir)
    subject = env.get_template(f"{language}/{name}.subject.txt").render(context)
    text = env.get_template(f"{language}/{name}.txt").render(context)
    html = env.get_template(f"{language}/{name}.html").render(context)
    return RenderedMail(single_line(subject, 300), text, html)


def make_message_id(key: str, domain: str) -> str:
    """Deterministic per idempotency key, so a re-send after a crash is the same mail."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.mailgate@{safe_domain(domain)}>"


def safe_domain(domain: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9.-]", "", domain or "")
    return cleaned or "localhost"


def address(display: str, addr: str) -> Address:
    """A header address; raises ValueError for anything that is not ``local@domain``."""
    addr = (addr or "").strip()
    if not _ADDR.match(addr) or _UNSAFE.search(addr):
        raise ValueError(f"not a usable mail address: {addr!r}")
    local, _, domain = addr.rpartition("@")
    return Address(display_name=single_line(display, 200), username=local, domain=domain)


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
) -> bytes:
    """A complete mail (text + HTML alternative, attachments) as bytes ready to send."""
    msg = EmailMessage(policy=SERIALIZE_POLICY)
    msg["Message-ID"] = single_line(message_id, 300)
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["From"] = address(from_name, from_address)
    msg["To"] = [address(name, addr) for name, addr in to]
    if reply_to:
        msg["Reply-To"] = [address(name, addr) for name, addr in reply_to]
    msg["Subject"] = single_line(subject, 300)
    if in_reply_to:
        msg["In-Reply-To"] = single_line(in_reply_to, 300)
    if references:
        msg["References"] = " ".join(single_line(r, 300) for r in references)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = "1"
    for name, value in (extra_headers or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name):
            raise ValueError(f"bad header name {name!r}")
        msg[name] = single_line(value)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for item in attachments:
        maintype, _, subtype = item.mimetype.partition("/")
        msg.add_attachment(
            item.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=single_line(item.filename, 200) or "attachment",
        )
    return msg.as_bytes(policy=SERIALIZE_POLICY)
