"""HTML to plain text with a size cap, for parsers that re-read an HTML body.

:func:`.message.html_to_text` removes comments, scripts, styles and the head in
one linear pass, so hostile markup (thousands of unclosed ``<script>`` tags)
cannot make it quadratic; this cap bounds the rest of the work.
"""

from __future__ import annotations

from .message import html_to_text

MAX_HTML_CHARS = 500_000


def html_text(markup: str, limit: int = MAX_HTML_CHARS) -> str:
    """Plain text of an HTML body (its first ``limit`` characters)."""
    return html_to_text(markup[:limit])
