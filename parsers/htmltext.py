"""HTML to plain text in linear time, for parsers that re-read an HTML body.

:func:`.message.html_to_text` removes ``<script>``/``<style>``/``<head>``
blocks with a lazy regex that rescans to the end of the document for every
opening tag without a closing one, which is quadratic on hostile input
(thousands of unclosed ``<script>`` tags).  This module drops those blocks with
a single forward scan first, so the regex has nothing left to rescan, and then
delegates to ``html_to_text`` for the line and cell layout every parser expects.
"""

from __future__ import annotations

from .message import html_to_text

MAX_HTML_CHARS = 500_000
_BLOCKS = ("script", "style", "head")


def strip_blocks(markup: str) -> str:
    """``markup`` without script/style/head blocks; an unclosed block runs to the end."""
    lower = markup.lower()
    kept: list[str] = []
    position = 0
    upcoming = {tag: lower.find("<" + tag, 0) for tag in _BLOCKS}
    while True:
        for tag, found in upcoming.items():
            if 0 <= found < position:
                upcoming[tag] = lower.find("<" + tag, position)
        present = [(found, tag) for tag, found in upcoming.items() if found >= 0]
        if not present:
            kept.append(markup[position:])
            break
        start, tag = min(present)
        after = start + 1 + len(tag)
        if after < len(lower) and (lower[after].isalnum() or lower[after] in "-_"):
            kept.append(markup[position:after])  # <header>, <scripts>: not a block
            position = after
            continue
        kept.append(markup[position:start])
        close = lower.find("</" + tag, after)
        if close < 0:
            break
        end = lower.find(">", close)
        position = len(markup) if end < 0 else end + 1
    return " ".join(kept)


def html_text(markup: str, limit: int = MAX_HTML_CHARS) -> str:
    """Plain text of an HTML body (first ``limit`` characters), in linear time."""
    return html_to_text(strip_blocks(markup[:limit]))
