"""File names from outside (uploads, a customer's attachments) reduced to plain names.

Shared by the answer form (names of uploaded files travel into the mail's
headers) and the downloads (names travel into ``Content-Disposition``): a
name is only ever a name, whatever the sender wrote.
"""

from __future__ import annotations

import re
import unicodedata

# control characters, path and quoting characters, and the bidi controls that make
# "invoice\u202efdp.exe" read as a PDF
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\"\\/:*?<>|\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


def safe_filename(name: str | None, number: int) -> str:
    """A file name that is only a name: no path, no control characters, no quotes.

    ``../../etc/passwd`` becomes ``passwd``; ``a\\r\\nBcc: x@evil.example.pdf``
    becomes ``a Bcc x@evil.example.pdf`` (the header encoder then quotes it).
    """
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = " ".join(_UNSAFE_NAME.sub(" ", text).split()).strip(". ")
    return text[:120] or f"Anhang-{number}"
