"""HTML to text: layout, hidden blocks, linear time on hostile markup, the size cap."""

from __future__ import annotations

import pytest

from mailgate.parsers.htmltext import html_text


def test_layout_and_hidden_blocks() -> None:
    markup = (
        "<html><head><title>T</title><style>p{}</style></head><body><header>Kopf</header>"
        "<script>alert(1)</script><table><tr><td>Name</td><td>Eva</td></tr></table></body></html>"
    )
    text = html_text(markup)
    assert "Kopf" in text and "Name: Eva" in text
    assert "alert" not in text and "p{}" not in text and "T\n" not in text


def test_unclosed_script_hides_the_rest() -> None:
    assert html_text("<p>a</p><script>b<p>c") == "a"


@pytest.mark.timeout(20)
def test_thousands_of_unclosed_scripts_finish() -> None:
    """Quadratic stripping took minutes here; linear takes milliseconds (bounded by timeout)."""
    markup = "<td>Lead-ID: 1</td><script>" * 20_000
    assert html_text(markup) == "Lead-ID: 1"


def test_input_is_capped() -> None:
    assert html_text("<p>" + "x" * 100 + "</p>", limit=10) == "x" * 7
