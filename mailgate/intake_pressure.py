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

People come first too: while the web UI serves a request in this process
(:meth:`IntakePressure.serving`, counted by :class:`CountRequests` around the
WSGI app), the worker waits between its transactions, up to
:data:`MAX_WEB_YIELD` s at a time.  Why: a salesperson's click is tens of
milliseconds of Python; beside a worker that holds the GIL for a whole chunk
of parsing and writing, every time the request's thread gives the GIL up (a
socket, an SQLite call) it waited up to a switch interval to get it back, and
p95 during a burst passed half a second (issue 18, item 3).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

WINDOW = 0.1  # seconds of intake history that count
BUSY_STORED = 5  # mails stored within WINDOW: 50 mails/s, five times a steady 10/s
BUSY_IN_FLIGHT = 2  # sessions waiting for their commit at once
MAX_YIELD = 1.0  # the longest the worker steps aside at one time
STEP = 0.01
MAX_WEB_YIELD = 0.25  # the longest the worker waits for web requests at one time
WEB_STEP = 0.002  # a web request takes tens of milliseconds: look again soon


class IntakePressure:
    """This process's SMTP intake: mails being stored now, and when the last ones were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stored: deque[float] = deque(maxlen=64)
        self._requests = 0

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

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Around one web request (see :class:`CountRequests`)."""
        with self._lock:
            self._requests += 1
        try:
            yield
        finally:
            with self._lock:
                self._requests -= 1

    def web_busy(self) -> bool:
        return self._requests > 0

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

    def yield_to_web(self, stop: threading.Event | None = None) -> float:
        """Wait while web requests are being served, at most :data:`MAX_WEB_YIELD` s."""
        started = time.monotonic()
        while self.web_busy() and time.monotonic() - started < MAX_WEB_YIELD:
            if stop is not None and stop.is_set():
                break
            time.sleep(WEB_STEP)
        return time.monotonic() - started

    def step_aside(self, stop: threading.Event | None = None) -> float:
        """Between two of the worker's transactions: intake first, then people; seconds waited."""
        return self.yield_to_intake(stop) + self.yield_to_web(stop)


PRESSURE = IntakePressure()


class CountRequests:
    """WSGI middleware: counts the requests in progress in :data:`PRESSURE`.

    Counted while the application runs; Flask has built the response body by
    the time it returns (the web UI streams nothing long).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], pressure: IntakePressure | None = None):
        self.app = app
        self.pressure = pressure or PRESSURE

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.pressure.serving():
            return self.app(environ, start_response)
