"""The lock that lets time-bound tests run alone under xdist (tests/run_alone.py).

Each ``RunAloneLock`` opens its own file descriptors, so two of them in one process
contend exactly like two xdist workers do.
"""

from __future__ import annotations

import threading
import time
import uuid

from .run_alone import RunAloneLock

SETTLE = 0.3  # seconds a blocked thread is given to (wrongly) get through


def _in_thread(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_an_exclusive_test_waits_for_running_tests_and_then_runs_alone() -> None:
    run_id = uuid.uuid4().hex
    running, alone = RunAloneLock(run_id), RunAloneLock(run_id)
    entered = threading.Event()

    def exclusive() -> None:
        with alone.exclusive():
            entered.set()

    with running.shared():
        waiter = _in_thread(exclusive)
        assert not entered.wait(SETTLE), "the exclusive test ran beside a running test"
    waiter.join(5)
    assert entered.is_set()


def test_tests_arriving_while_an_exclusive_one_waits_queue_behind_it() -> None:
    run_id = uuid.uuid4().hex
    first, alone, late = RunAloneLock(run_id), RunAloneLock(run_id), RunAloneLock(run_id)
    order: list[str] = []
    alone_in, release_alone = threading.Event(), threading.Event()

    def exclusive() -> None:
        with alone.exclusive():
            order.append("alone")
            alone_in.set()
            release_alone.wait(5)

    def shared_late() -> None:
        with late.shared():
            order.append("late")

    with first.shared():
        waiter = _in_thread(exclusive)
        time.sleep(SETTLE)  # the exclusive one is queued at the gate now
        arriving = _in_thread(shared_late)
        time.sleep(SETTLE)
        assert order == [], "a test got in beside the running one and the waiting exclusive one"
    assert alone_in.wait(5)
    time.sleep(SETTLE)  # room for the late one to (wrongly) get in beside it
    assert order == ["alone"], "the late test slipped past the waiting exclusive one"
    release_alone.set()
    waiter.join(5)
    arriving.join(5)
    assert order == ["alone", "late"]


def test_shared_holders_run_side_by_side() -> None:
    run_id = uuid.uuid4().hex
    one, two = RunAloneLock(run_id), RunAloneLock(run_id)
    both = threading.Barrier(2, timeout=5)

    def shared() -> None:
        with two.shared():
            both.wait()

    with one.shared():
        other = _in_thread(shared)
        both.wait()  # raises BrokenBarrierError if the two could not hold it at once
    other.join(5)
