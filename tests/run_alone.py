"""Let tests that measure time run alone while the rest of the suite runs in parallel.

Why: the suite runs on pytest-xdist workers to stay inside CI's time budget, but
some rows assert a time bound (recovery within 5 s, reminders picked up within two
poll intervals, p99 latencies). Measured beside three other busy tests on two
cores, such a bound measures the neighbours. A test marked ``run_alone`` takes an
exclusive lock that every other test holds shared, so it starts only when the
other workers are between tests and they wait until it is done.

A plain reader-writer lock would let a stream of shared holders starve the
exclusive one, so a turnstile goes first: an exclusive waiter holds it, and new
tests queue at it instead of slipping past. Both are ``flock`` locks on files in
the temporary directory, named after xdist's run id, so they are one per run and
vanish with the processes that hold them (a crashed worker releases its lock).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARKER = "run_alone"


def _lock_file(run_id: str, name: str) -> int:
    path = Path(tempfile.gettempdir()) / f"mailgate-pytest-{run_id}-{name}.lock"
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


class RunAloneLock:
    """One worker's handle on the run-wide turnstile and gate."""

    def __init__(self, run_id: str) -> None:
        self.turnstile = _lock_file(run_id, "turnstile")
        self.gate = _lock_file(run_id, "gate")

    @contextmanager
    def shared(self) -> Iterator[None]:
        fcntl.flock(self.turnstile, fcntl.LOCK_EX)  # queue behind a waiting exclusive test
        fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        fcntl.flock(self.gate, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self.gate, fcntl.LOCK_UN)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        fcntl.flock(self.turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.gate, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.gate, fcntl.LOCK_UN)
        finally:
            fcntl.flock(self.turnstile, fcntl.LOCK_UN)


def xdist_run_id() -> str | None:
    """xdist's id of this run in a worker process, None outside xdist."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return None
    return os.environ.get("PYTEST_XDIST_TESTRUNUID")
