"""atheris target for RELIABILITY.md M4: ``mailgate.parsers.extract_lead``, bare.

``extract_lead`` is what ``parse_view`` runs behind its safety net (unwrap a
forward, pick the parser, the authentication check, the parser's ``parse``,
``finalize``); called here directly, any exception in a parser is a crash.
Before it, the target does what ``parse_raw`` does before ``parse_view``:
``check_shape`` (a :class:`ShapeError` is the documented rejection: such a mail is
quarantined unparsed, so the input is skipped), ``load`` and ``non_lead_reason``
(a non-lead is discarded and never reaches a parser: skipped as well). A
failing ``matches`` that ``registry.pick`` swallows is raised
(:class:`harness.SwallowWatch`).

How to run it, and with which seeds: fuzz/README.md; the long-tier run:
tests/test_fuzz_atheris.py.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from mailgate.parsers import extract_lead
    from mailgate.parsers.message import ShapeError, check_shape, load
    from mailgate.parsers.nonlead import non_lead_reason

from harness import FUZZ_CONTEXT, SwallowWatch, run  # noqa: E402

WATCH = SwallowWatch()


def test_one_input(data: bytes) -> None:
    """One mail through load and ``extract_lead``; nothing is caught."""
    WATCH.reset()
    try:
        check_shape(data)
    except ShapeError:
        return
    view = load(data)
    if non_lead_reason(view, None):
        return
    extract_lead(view, FUZZ_CONTEXT)
    WATCH.raise_if_caught("registry.pick")


if __name__ == "__main__":
    run(test_one_input)
