"""Intake first: the worker steps aside while a burst of mail arrives (issue 18, item 2).

Why: in ``mailgate serve`` the SMTP listener, the worker, the sender and the web
UI share one process and its GIL (and, on SQLite, one write lock).  A worker
processing the backlog while a marketplace batch arrives took two thirds of
the listener's rate: the sending MTA waited for its 250s so that leads could
be written a few hundred milliseconds sooner.  A 250 is the promise that
matters during a burst; processing may lag a little and catches up at full
speed right after (measured in ``docs/performance.md``).

The listener reports each DATA it stores (:meth:`IntakePressure.storing`);
the worker asks :meth:`IntakePressure.yield_to_intake` before it claims or
writes.  "Busy" means several sessions waiting for their commit, or more
mails stored in the last :data:`WINDOW` seconds than a steady trickle brings:
at 10 mails/s the worker does not wait at all (speed to lead), during a burst
it waits up to :data:`MAX_YIELD` seconds at a time, so even an endless flood
leaves it a share.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

WINDOW = 0.1  # seconds of intake history that count
BUSY_STORED = 5  # mails stored within WINDOW: 50 mails/s, five times a steady 10/s
BUSY_IN_FLIGHT = 2  # sessions waiting for their commit at once
MAX_YIELD = 1.0  # the longest the worker steps aside at one time
STEP = 0.01


class IntakePressure:
    """This process's SMTP intake: mails being stored now, and when the last ones were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stored: deque[float] = deque(maxlen=64)

    @contextmanager
    def storing(self) -> Iterator[None]:
        """Around one mail's store-and-commit in the listener."""
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._stored.append(time.monotonic())

    def busy(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._in_flight >= BUSY_IN_FLIGHT:
                return True
            recent = sum(1 for at in self._stored if now - at <= WINDOW)
        return recent >= BUSY_STORED

    def yield_to_intake(self, stop: threading.Event | None = None) -> float:
        """Wait while intake is busy, at most :data:`MAX_YIELD` s; returns the seconds waited."""
        started = time.monotonic()
        while self.busy() and time.monotonic() - started < MAX_YIELD:
            if stop is not None and stop.is_set():
                break
            time.sleep(STEP)
        return time.monotonic() - started


PRESSURE = IntakePressure()
