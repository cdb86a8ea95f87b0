"""Header values as people write them: encoded words (RFC 2047) decoded, one line.

The mail parser decodes well-formed encoded words already; senders that glue
an encoded word to the text before it, or put spaces inside one, leave
``=?utf-8?q?…?=`` behind, which a salesperson must never read.  This is the
lenient second pass (:func:`email.header.decode_header`, which finds encoded
words anywhere) for every header value the lead page shows.  The result is
plain text: the templates escape it, so a decoded ``<script>`` stays text.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.header import decode_header, make_header

ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_CHARS = 2000


def decoded(value: str | None) -> str:
    """``value`` with any encoded words left in it decoded, on one line ('' for None)."""
    if not value:
        return ""
    text = value[:MAX_CHARS]
    if ENCODED_WORD.search(text):
        try:
            text = str(make_header(decode_header(text))) or text
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            pass  # an unknown charset or broken base64: the value as it came
    return " ".join(CONTROL.sub(" ", text).split())
