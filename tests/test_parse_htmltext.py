"""Linear-time HTML to text for parsers that re-read an HTML body."""

from __future__ import annotations

import time

from mailgate.parsers.htmltext import html_text, strip_blocks
from mailgate.parsers.message import html_to_text


def test_same_text_as_html_to_text_on_ordinary_markup() -> None:
    markup = (
        "<html><head><title>T</title><style>p{}</style></head><body><header>Kopf</header>"
        "<script>alert(1)</script><table><tr><td>Name</td><td>Eva</td></tr></table></body></html>"
    )
    assert html_text(markup) == html_to_text(markup)
    assert "Kopf" in html_text(markup) and "Name: Eva" in html_text(markup)
    assert "alert" not in html_text(markup)


def test_unclosed_block_runs_to_the_end() -> None:
    assert strip_blocks("a<script>b<p>c") == "a"
    assert strip_blocks("a<STYLE x>b</Style >c") == "a c"


def test_thousands_of_unclosed_scripts_are_linear() -> None:
    markup = "<td>Lead-ID: 1</td><script>" * 20_000
    started = time.perf_counter()
    assert html_text(markup) == "Lead-ID: 1"
    assert time.perf_counter() - started < 1.0


def test_input_is_capped() -> None:
    assert html_text("<p>" + "x" * 100 + "</p>", limit=10) == "x" * 7
