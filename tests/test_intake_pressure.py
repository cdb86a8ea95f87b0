"""The worker steps aside for SMTP intake and for web requests (mailgate.intake_pressure)."""

from __future__ import annotations

import threading
import time

from mailgate import intake_pressure
from mailgate.intake_pressure import CountRequests, IntakePressure


def test_a_request_is_counted_while_the_app_runs_and_after_it_fails() -> None:
    pressure = IntakePressure()
    seen: list[bool] = []

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        seen.append(pressure.web_busy())
        if environ.get("PATH_INFO") == "/boom":
            raise RuntimeError("boom")
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = CountRequests(app, pressure)
    assert wrapped({"PATH_INFO": "/"}, lambda *a: None) == [b"ok"]
    try:
        wrapped({"PATH_INFO": "/boom"}, lambda *a: None)
    except RuntimeError:
        pass
    assert seen == [True, True] and not pressure.web_busy()


def test_the_worker_waits_for_a_request_and_goes_on_when_it_ends(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(intake_pressure, "MAX_WEB_YIELD", 30.0)  # only the request's end frees it
    pressure = IntakePressure()
    entered, leave = threading.Event(), threading.Event()

    def request() -> None:
        with pressure.serving():
            entered.set()
            leave.wait(5)

    thread = threading.Thread(target=request)
    thread.start()
    entered.wait(5)
    waited: list[float] = []
    worker = threading.Thread(target=lambda: waited.append(pressure.step_aside()))
    worker.start()
    time.sleep(0.05)
    assert worker.is_alive()  # still stepping aside while the request runs
    leave.set()
    worker.join(5)
    thread.join(5)
    assert not worker.is_alive() and waited and 0 < waited[0] < 30


def test_an_endless_stream_of_requests_still_leaves_the_worker_a_share(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(intake_pressure, "MAX_WEB_YIELD", 0.05)
    pressure = IntakePressure()
    with pressure.serving():
        waited = pressure.yield_to_web()
    assert waited >= 0.05 and not pressure.web_busy()


def test_a_stopping_worker_does_not_wait() -> None:
    pressure = IntakePressure()
    stop = threading.Event()
    stop.set()
    with pressure.serving():
        assert pressure.yield_to_web(stop) < intake_pressure.MAX_WEB_YIELD
