"""atheris target for RELIABILITY.md M4: the lead extraction without the safety net.

There is no function named ``extract_lead``: the row's "extract_lead()" is
what ``parse_view`` (``parsers/__init__.py``) runs inside its ``try``, called
here directly so that any exception in a parser is a crash:

1. ``message.check_shape`` (a :class:`ShapeError` is the documented rejection:
   such a mail is quarantined unparsed, so the input is skipped), then
   ``message.load`` and ``nonlead.non_lead_reason`` — the pipeline's
   ``classify`` stage calls these without a ``try`` too; a non-lead is
   discarded there and never reaches a parser, so it is skipped here as well;
2. ``forward.unwrap_forward``, ``registry.pick`` (its swallowed ``matches``
   failures are raised, see :class:`harness.SwallowWatch`) and
   ``signals.authentication_failed``;
3. the picked parser module's ``parse(view, ctx)`` — the extraction proper —
   and ``finish.finalize`` on its result.

How to run it, and with which seeds: fuzz/README.md; the long-tier run:
tests/test_fuzz_atheris.py.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from mailgate.parsers.finish import finalize
    from mailgate.parsers.forward import unwrap_forward
    from mailgate.parsers.message import ShapeError, check_shape, load
    from mailgate.parsers.nonlead import non_lead_reason
    from mailgate.parsers.registry import pick
    from mailgate.parsers.signals import authentication_failed

from harness import FUZZ_CONTEXT, SwallowWatch, run  # noqa: E402

WATCH = SwallowWatch()


def test_one_input(data: bytes) -> None:
    """One mail through load, pick and the picked parser's ``parse``; nothing is caught."""
    WATCH.reset()
    try:
        check_shape(data)
    except ShapeError:
        return
    outer = load(data)
    if non_lead_reason(outer, None):
        return
    view = unwrap_forward(outer, FUZZ_CONTEXT)
    module = pick(view)
    WATCH.raise_if_caught(f"registry.pick (chose {module.NAME})")
    authentication_failed(outer, FUZZ_CONTEXT.trusted_authserv_ids)
    finalize(module.parse(view, FUZZ_CONTEXT), FUZZ_CONTEXT)


if __name__ == "__main__":
    run(test_one_input)
