"""What both atheris targets share: the dealer context, the swallow watch, the self-check.

Import this *after* the ``atheris.instrument_imports()`` block of a target:
it touches ``mailgate.parsers`` and must not be the first to import it, or the
parsers would run uninstrumented (no coverage feedback for the fuzzer).
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import atheris

import mailgate.parsers
from mailgate.parsers import ParseContext, generic, registry
from mailgate.parsers.message import MailView
from mailgate.parsers.model import ParsedLead

# A dealer with addresses and a trusted MX, so the forward unwrapping ("sent by
# the dealer") and the Authentication-Results checks are reachable at all; the
# same values as tests/test_parser_fixtures.py and its fixtures.
FUZZ_CONTEXT = ParseContext(
    dealer_addresses=frozenset(
        {"leads@autohaus-beispiel.example", "verkauf@autohaus-beispiel.example"}
    ),
    region="DE",
    trusted_authserv_ids=frozenset({"mx.autohaus-beispiel.example"}),
)

# MAILGATE_FUZZ_SELFTEST=1 plants a bug in the generic parser that fires on this
# marker in the body: the test proves the harness reports a crash end to end.
SELFTEST_ENV = "MAILGATE_FUZZ_SELFTEST"
SELFTEST_MARKER = "MAILGATE-FUZZ-SELFTEST"


class SwallowedError(RuntimeError):
    """The parsers caught an exception the fuzzer must see (a bug behind the safety net)."""


class SwallowWatch:
    """Records the exceptions the parsers' safety nets catch, without changing what they do.

    ``parse_raw``/``parse_view`` turn any exception into the ``_unparseable``
    result, and ``registry.pick`` turns a failing ``matches`` into a warning;
    both are right for production and hide bugs from a fuzzer.  The watch wraps
    ``_unparseable`` and every matcher so each caught exception is kept here;
    the result the caller sees is unchanged.
    """

    def __init__(self) -> None:
        self.caught: list[BaseException] = []
        unparseable = mailgate.parsers._unparseable

        def recording_unparseable(exc: Exception) -> ParsedLead:
            self.caught.append(exc)
            return unparseable(exc)

        mailgate.parsers._unparseable = recording_unparseable
        for module in registry.SPECIFIC:
            module.matches = self._recording_matcher(module)

    def _recording_matcher(self, module: ModuleType) -> Callable[[MailView], bool]:
        matches = module.matches

        @functools.wraps(matches)
        def recording(view: MailView) -> bool:
            try:
                return matches(view)
            except Exception as exc:
                self.caught.append(exc)
                raise

        return recording

    def reset(self) -> None:
        self.caught.clear()

    def raise_if_caught(self, what: str) -> None:
        """Raise :class:`SwallowedError` (caused by the first caught exception), if any."""
        if self.caught:
            first = self.caught[0]
            # atheris prints only the raised exception, not its cause: the
            # original traceback goes into the message.
            original = "".join(traceback.format_exception(first))
            raise SwallowedError(f"{what} swallowed an exception:\n{original}") from first


def plant_selftest_bug() -> None:
    """Under ``MAILGATE_FUZZ_SELFTEST=1``: the generic parser raises on the marker."""
    if os.environ.get(SELFTEST_ENV) != "1":
        return
    parse = generic.parse

    def buggy(view: MailView, ctx: ParseContext = FUZZ_CONTEXT) -> ParsedLead:
        if SELFTEST_MARKER in view.text:
            raise ZeroDivisionError("planted by MAILGATE_FUZZ_SELFTEST")
        return parse(view, ctx)

    generic.parse = buggy


def keeping_crash_inputs(
    test_one_input: Callable[[bytes], None], argv: list[str]
) -> Callable[[bytes], None]:
    """``test_one_input`` that saves a crashing input itself before it re-raises.

    libFuzzer writes ``<artifact_prefix>crash-<sha1>`` from its exit handler,
    and in the first M4 runs (both targets, in the background) that handler
    never ran: the process ended right after atheris printed the traceback and
    the input was lost.  The same file name is written here first (libFuzzer,
    when it gets there, writes the same bytes again), so a crash input is kept.
    """
    prefix = next((a.split("=", 1)[1] for a in argv if a.startswith("-artifact_prefix=")), "./")

    def saving(data: bytes) -> None:
        try:
            test_one_input(data)
        except Exception:
            Path(
                f"{prefix}crash-{hashlib.sha1(data, usedforsecurity=False).hexdigest()}"
            ).write_bytes(data)
            raise

    return saving


def run(test_one_input: Callable[[bytes], None]) -> None:
    """libFuzzer's command line (``-dict=``, ``-timeout=``, corpus dirs) and the loop."""
    plant_selftest_bug()
    atheris.Setup(sys.argv, keeping_crash_inputs(test_one_input, sys.argv))
    atheris.Fuzz()
