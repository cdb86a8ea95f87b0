"""The pure stages (classify, parse) of a batch in worker processes, beside the DB stages.

Why: parsing is pure Python and holds the GIL; with the database stages made
set-based it became the larger half of a mail's cost.  Parsed in child
processes, the next chunk is parsed while the main process writes the current
one, so the worker runs at the speed of the slower half instead of their sum.

A job travels without its session; it comes back without its raw bytes (the
parent has them) and with a :class:`MailView` that keeps the headers and the
decoded text but not the MIME tree (the DB stages read only those).  A chunk
whose child process dies (a mail that crashes the parser) is parsed again one
mail per task, so the mail that kills a process is found and failed without
taking the worker down; the others go on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from email.message import Message
from typing import TypeVar

from mailgate.parsers.message import MailView

log = logging.getLogger("mailgate.worker")
T = TypeVar("T")
CHUNK = 10  # mails per task: enough to amortise the round trip, small to start early
MIN_MAILS = 2 * CHUNK  # fewer are parsed in-process: no round trip for a single mail
_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


HOLD_OFF = 30.0  # seconds after a service start without parser processes (see hold_off)
_not_before = 0.0


def hold_off(seconds: float = HOLD_OFF) -> None:
    """No parser processes for a while: called when the service (re)starts.

    Why: after a restart the listener must accept mail within seconds, while
    starting the pool costs seconds of CPU (each process imports the parsers)
    on a small machine; a backlog right after a restart is parsed in-process.
    """
    global _not_before
    _not_before = time.monotonic() + seconds


def processes() -> int:
    """Parser processes: one per core but the one the main process's DB stages need."""
    configured = os.environ.get("MAILGATE_PARSE_PROCESSES")
    if configured is not None:
        return max(0, int(configured))
    return (os.cpu_count() or 1) - 1


def get_pool() -> ProcessPoolExecutor | None:
    """The shared pool, started on first use (None: parse in-process)."""
    global _pool
    if processes() == 0 or time.monotonic() < _not_before:
        return None
    with _lock:
        if _pool is None:
            # forkserver, not fork: the service has threads (SMTP, sender, web UI)
            # whose locks a forked child would inherit in whatever state.
            context = multiprocessing.get_context("forkserver")
            _pool = ProcessPoolExecutor(max_workers=processes(), mp_context=context)
        return _pool


def _discard_pool() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


def slim_view(view: MailView) -> MailView:
    """The view without its MIME tree: headers, subject, addresses, text (cheap to send)."""
    message = Message(policy=view.message.policy)
    for name, value in view.message.raw_items():
        message.set_raw(name, value)
    return replace(view, message=message)


def run_chunks(
    items: Sequence[T],
    work: Callable[[list[T]], list[object]],
    local: Callable[[T], object],
    on_death: Callable[[T], object],
) -> Iterator[list[object]]:
    """Results of ``work`` over chunks of ``items``, in order, computed in the pool.

    ``local`` handles one item in-process (small batches, no pool);
    ``on_death`` is the result for an item whose own task killed its process.
    The chunks go to the pool at the call, not at the first ``next``: the
    worker starts the next batch's parsing before it writes this one.
    """
    pool = get_pool() if len(items) >= MIN_MAILS else None
    chunks = [list(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
    if pool is None:
        return ([local(item) for item in chunk] for chunk in chunks)
    return _collect(chunks, _submit(chunks, work), work, on_death)


def uses_pool(count: int) -> bool:
    """Whether ``count`` items would be parsed in the pool now (see :func:`run_chunks`)."""
    return count >= MIN_MAILS and get_pool() is not None


def _collect(
    chunks: list[list[T]],
    futures: list[Future],
    work: Callable[[list[T]], list[object]],
    on_death: Callable[[T], object],
) -> Iterator[list[object]]:
    for index, chunk in enumerate(chunks):
        try:
            yield futures[index].result()
        except BrokenProcessPool:
            # Any chunk in flight fails when one kills its process: find the
            # killer in this one, then send the rest again to a fresh pool.
            _discard_pool()
            yield _one_by_one(chunk, work, on_death)
            futures[index + 1 :] = _submit(chunks[index + 1 :], work)


def _submit(chunks: list[list[T]], work: Callable[[list[T]], list[object]]) -> list[Future]:
    """Send chunks to the pool; a pool that broke while idle is replaced first.

    Why: a parser process can die between batches (the OOM killer, an earlier
    batch's killer mail whose futures nobody waited for); ``submit`` on such a
    pool raises at once, and without a fresh pool every later pass would too.
    """
    for _ in range(2):
        pool = get_pool()
        if pool is None:
            raise RuntimeError("parser processes are not available")
        try:
            return [pool.submit(work, chunk) for chunk in chunks]
        except BrokenProcessPool:
            _discard_pool()
    raise RuntimeError("parser processes keep breaking")


def _one_by_one(
    chunk: list[T], work: Callable[[list[T]], list[object]], on_death: Callable[[T], object]
) -> list[object]:
    """Each item in a task of its own: the one whose task breaks the pool is the killer."""
    results: list[object] = []
    for item in chunk:
        pool = get_pool()
        if pool is None:
            raise RuntimeError("parser processes are not available")
        try:
            results.extend(pool.submit(work, [item]).result())
        except BrokenProcessPool:
            log.error("a mail killed its parser process; marking it failed")
            _discard_pool()
            results.append(on_death(item))
    return results
