"""atheris target for RELIABILITY.md M4: ``mailgate.parsers.parse_raw``.

``parse_raw`` never raises by contract: every exception in loading, the
non-lead check or a parser becomes an ``unparseable`` result (``_unparseable``
in ``parsers/__init__.py``, reached from ``parse_raw`` and ``parse_view``), and
a failing ``matches`` becomes a warning (``registry.pick``).  A plain call could
therefore never crash; this target records what those safety nets catch
(:class:`harness.SwallowWatch`) and raises it, so atheris reports the original
exception with its traceback.  An ``unparseable`` result without a recorded
exception is reported too.

How to run it, and with which seeds: fuzz/README.md; the long-tier run:
tests/test_fuzz_atheris.py.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from mailgate.parsers import parse_raw

from harness import FUZZ_CONTEXT, SwallowedError, SwallowWatch, run  # noqa: E402

WATCH = SwallowWatch()


def test_one_input(data: bytes) -> None:
    """One mail through ``parse_raw``; any exception it swallowed is raised here."""
    WATCH.reset()
    lead = parse_raw(data, ctx=FUZZ_CONTEXT)
    WATCH.raise_if_caught("parse_raw")
    if lead.non_lead_reason == "unparseable":
        raise SwallowedError(f"parse_raw returned an unparseable result: {lead.warnings}")


if __name__ == "__main__":
    run(test_one_input)
