"""The writer's own words of a reply: every quoted part cut off, in text and in HTML.

Why this matters: a salesperson answers our notification (or reminder, or
escalation) and the mail client quotes it below the answer — with the
customer's data, the lead link and the one-click action links that act
without a login.  Only the salesperson's words may reach the customer.  Mail
clients quote in many ways, so each is recognised on its own:

- ``>`` quoting (Thunderbird, mutt, most plain-text clients);
- Outlook's separators ``-----Ursprüngliche Nachricht-----`` /
  ``-----Original Message-----`` and the underscore line, and its header
  block ``Von: … Gesendet: …`` / ``From: … Sent: …`` (also ``*Von:*`` as
  rich text turns into plain text);
- the attribution line of Apple Mail (``Am 27.11.2026 um 16:00 schrieb …:``),
  Gmail (``Am Fr., 27. Nov. 2026 um 16:00 Uhr schrieb …:``, ``On … wrote:``)
  and Thunderbird, also when the client wrapped it over two or three lines;
- in HTML: ``<blockquote>``, Outlook's ``divRplyFwdMsg`` / ``appendonsend``
  and its border-top header block, Gmail's ``gmail_quote``, Thunderbird's
  ``moz-cite-prefix``, Yahoo's ``yahoo_quoted``.

Cutting is deliberately greedy: everything from the first quote marker on is
dropped, since a bottom-posted answer is rare and a leaked action link is not.
The relay's last filter (:mod:`mailgate.outbound.hygiene`) still removes any
mailgate link that survived, whatever the format.
"""

from __future__ import annotations

import re

from mailgate.parsers.message import (
    MailView,
    clean_text,
    decode_part,
    html_to_text,
    leaf_parts,
    remove_banners,
)

_SEPARATOR = re.compile(
    r"^-{2,}\s*(Ursprüngliche Nachricht|Original Message|Forwarded message|"
    r"Weitergeleitete Nachricht|Message d'origine|Oorspronkelijk bericht)",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^_{10,}\s*$")  # Outlook's line before the quoted header block
_QUOTED = re.compile(r"^\s*>")
_HEADER_FROM = re.compile(r"^\*?(Von|From|De|Van)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_NEXT = re.compile(
    r"^\*?(Gesendet|Sent|Datum|Date|An|To|Cc|Betreff|Subject|Envoyé|Verzonden|Objet)\s*:",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"^(Am|On|Le|Op|El)\s", re.IGNORECASE)
_ATTRIBUTION = re.compile(
    r"^(Am|On|Le|Op|El)\s.{0,400}?\b(schrieb|wrote|a écrit|schreef|escribió)\b.{0,400}:\s*$",
    re.IGNORECASE | re.DOTALL,
)
_WRAPPED_LINES = 3  # Gmail wraps a long attribution line (name <address>) at ~78 characters

# Where a quote begins in HTML; the earliest match wins.
_HTML_QUOTE_STARTS = (
    re.compile(r"<blockquote\b", re.IGNORECASE),
    re.compile(r"<hr\b[^>]*>\s*(<div[^>]*>\s*</div>\s*)*<div\b[^>]*\bdivRplyFwdMsg", re.I),
    re.compile(r"<div\b[^>]*\bid\s*=\s*[\"']?(divRplyFwdMsg|appendonsend)", re.IGNORECASE),
    re.compile(r"<div\b[^>]*\bclass\s*=\s*[\"']?[^\"'>]*\bgmail_quote", re.IGNORECASE),
    re.compile(r"<div\b[^>]*\bclass\s*=\s*[\"']?[^\"'>]*\bmoz-cite-prefix", re.IGNORECASE),
    re.compile(r"<div\b[^>]*\bclass\s*=\s*[\"']?[^\"'>]*\byahoo_quoted", re.IGNORECASE),
    # Outlook desktop: the header block sits in a div with a top border only
    re.compile(r"<div\b[^>]*style\s*=\s*[\"'][^\"']*border-top\s*:\s*solid", re.IGNORECASE),
    re.compile(r"-{2,}\s*(Ursprüngliche Nachricht|Original Message)", re.IGNORECASE),
)
MAX_HTML_CHARS = 500_000


def quote_start(lines: list[str]) -> int | None:
    """Index of the first line that begins a quoted part, or None."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if (
            _SEPARATOR.match(stripped)
            or _UNDERSCORES.match(stripped)
            or _QUOTED.match(line)
            or _is_header_block(lines, index)
            or _is_attribution(lines, index)
        ):
            return index
    return None


def _is_header_block(lines: list[str], index: int) -> bool:
    """``Von: …`` followed by ``Gesendet:``/``An:``/``Betreff:`` (or naming an address).

    Requiring a second header line (or an address) keeps a salesperson's own
    ``Von: 9 bis 18 Uhr erreichbar`` in the answer.
    """
    if not _HEADER_FROM.match(lines[index].strip()):
        return False
    if "@" in lines[index]:
        return True
    for line in lines[index + 1 : index + 5]:  # the block's lines follow without a gap
        if not line.strip():
            return False
        if _HEADER_NEXT.match(line.strip()):
            return True
    return False


def _is_attribution(lines: list[str], index: int) -> bool:
    """``Am … schrieb …:`` on this line, or wrapped over the next two."""
    if not _ATTRIBUTION_START.match(lines[index].strip()):
        return False
    for span in range(1, _WRAPPED_LINES + 1):
        joined = " ".join(line.strip() for line in lines[index : index + span])
        # a wrapped attribution was wrapped because of the address in it
        if (span == 1 or "@" in joined) and _ATTRIBUTION.match(joined):
            return True
    return False


def own_words(text: str) -> str:
    """The writer's own text: everything before the first quoted part, trimmed.

    A bottom-posted or interleaved answer (nothing above the quote) keeps the
    unquoted lines between and below ``>`` quotes instead, so the answer is
    not lost; the attribution line and every quoted line still go.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = quote_start(lines)
    kept = lines if start is None else lines[:start]
    own = "\n".join(line.rstrip() for line in kept).strip()
    if own or start is None:
        return own
    return _interleaved(lines[start:])


def _interleaved(lines: list[str]) -> str:
    """The unquoted lines of an answer written between or below ``>`` quotes.

    Only for ``>`` quoting: an Outlook or Gmail header block quotes nothing
    with markers, so whatever follows it is the quoted mail, never an answer.
    """
    kept: list[str] = []
    skip_to = -1  # the last line of a (wrapped) attribution
    for index, line in enumerate(lines):
        stripped = line.strip()
        if index <= skip_to or _QUOTED.match(line):
            continue
        if _SEPARATOR.match(stripped) or _UNDERSCORES.match(stripped):
            break
        if _is_header_block(lines, index):
            break
        if _is_attribution(lines, index):
            ends = [i for i in range(index, index + _WRAPPED_LINES) if i < len(lines)]
            skip_to = next((i for i in ends if lines[i].rstrip().endswith(":")), index)
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def own_html(markup: str) -> str:
    """The HTML before the first quote marker (the rest of the document is dropped).

    The result may leave elements unclosed; HTML parsers and mail clients
    close them, and :func:`own_text_of_html` only needs the text.
    """
    markup = markup[:MAX_HTML_CHARS]
    starts = [m.start() for p in _HTML_QUOTE_STARTS if (m := p.search(markup))]
    return markup[: min(starts)] if starts else markup


def own_text_of_html(markup: str) -> str:
    """Plain own words of an HTML reply: cut in the markup, then in the text."""
    return own_words(remove_banners(clean_text(html_to_text(own_html(markup)))))


def reply_text(view: MailView) -> str:
    """The sender's own words from a reply, preferring the text part the client wrote.

    Why not ``view.text``: for inquiries the parser takes the HTML when the
    plain part looks like a stub, and a quoted notification in the HTML is
    full of ``Label: value`` lines — exactly what it looks for.  For a reply
    the plain part is the writer's; only an HTML-only reply is read from HTML,
    with the quote cut in the markup first (blockquotes lose their ``>``
    when flattened to text).
    """
    plain: str | None = None
    html_body: str | None = None
    for part in leaf_parts(view.message):
        if part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = decode_part(part, [])
        elif ctype == "text/html" and html_body is None:
            html_body = decode_part(part, [])
    if plain is not None and plain.strip():
        return own_words(remove_banners(clean_text(plain)))
    if html_body:
        return own_text_of_html(html_body)
    return own_words(view.text)
