"""Speed to lead: from an inquiry's 250 to its notification's arrival at the relay (issue 18).

Shared by ``bench/speed_to_lead.py`` and ``tests/test_speed_to_lead.py``.  The
relay is a real SMTP server (aiosmtpd) in this process, so the 250 the client
reads and the notification the relay receives are stamped on one clock.  Each
inquiry carries its number in the customer's name (``Kunde Marker<n>``); the
notification's subject names the customer, which pairs the two.
"""

from __future__ import annotations

import re
import smtplib
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller

from .conftest import DEALER_TOML, free_port
from .mails import LEAD_ADDRESS, inquiry
from .procs import Install, make_install

MARKER = re.compile(rb"^Subject:[^\r\n]*Marker(\d+)", re.MULTILINE)
# The dealer is open around the clock: notifications leave at once, whatever
# the time of day the test runs (outside opening hours they wait, by design).
OPEN_ALWAYS = "\n[hours]\n" + "".join(
    f'{day} = ["00:00-24:00"]\n' for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
)


class _Recorder:
    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.others = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        at = time.monotonic()
        match = MARKER.search(envelope.original_content or b"")
        with self.lock:
            if match:
                self.arrivals.setdefault(int(match.group(1)), at)
            else:
                self.others += 1
        return "250 2.0.0 OK"


class RelaySink:
    """An SMTP relay that accepts everything and stamps each notification's arrival."""

    def __init__(self) -> None:
        self.port = free_port()
        self.recorder = _Recorder()
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> RelaySink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def arrivals(self) -> dict[int, float]:
        with self.recorder.lock:
            return dict(self.recorder.arrivals)


def install_with_relay(root: Path, relay_port: int, db_url: str | None = None) -> Install:
    """An installation whose relay is the sink and whose dealer is always open.

    The sender's and worker's poll intervals stay at their defaults (2 s): the
    speed measured is the wake-up's, not a short poll's.
    """
    install = make_install(
        root, db_url, extra=f'[relay]\nhost = "127.0.0.1"\nport = {relay_port}\n'
    )
    config = install.config.read_text()
    config = config.replace("[worker]\npoll_interval = 0.2\n", "").replace(
        "[sender]\npoll_interval = 0.5\n", ""
    )
    install.config.write_text(config)
    install.at_default_log_level()  # as users run it
    dealer = root / "dealer-open.toml"
    dealer.write_text(DEALER_TOML + OPEN_ALWAYS)
    result = install.run("settings", "import", str(dealer))
    assert result.returncode == 0, result.stderr.decode()
    return install


@dataclass
class Sent:
    acked: dict[int, float] = field(default_factory=dict)  # n -> monotonic time of the 250
    refused: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _mail(n: int) -> bytes:
    return inquiry(n, name=f"Kunde Marker{n}", message_id=f"<speed-{n}@kunden.example>")


def send_steady(port: int, numbers: list[int], rate: float, connections: int = 2) -> Sent:
    """One inquiry every ``1/rate`` s, on ``connections`` reused SMTP connections in turn."""
    sent = Sent()
    interval = 1.0 / rate
    start = time.monotonic() + 0.1

    def deliver(part: list[tuple[int, int]]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            for slot, n in part:
                delay = start + slot * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                _send_one(smtp, n, sent)

    slots = list(enumerate(numbers))
    threads = [
        threading.Thread(target=deliver, args=(slots[i::connections],)) for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def send_burst(port: int, numbers: list[int], connections: int = 10) -> Sent:
    """All inquiries as fast as the service acknowledges them, over ``connections`` sessions."""
    sent = Sent()

    def deliver(part: list[int]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for n in part:
                _send_one(smtp, n, sent)

    threads = [
        threading.Thread(target=deliver, args=(numbers[i::connections],))
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def _send_one(smtp: smtplib.SMTP, n: int, sent: Sent) -> None:
    try:
        smtp.sendmail("form@kunden.example", [LEAD_ADDRESS], _mail(n))
    except smtplib.SMTPResponseException as exc:
        with sent.lock:
            sent.refused.append(exc.smtp_code)
        return
    at = time.monotonic()
    with sent.lock:
        sent.acked[n] = at


def wait_for_arrivals(sink: RelaySink, numbers: list[int], timeout: float) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arrivals = sink.arrivals()
        if all(n in arrivals for n in numbers):
            return arrivals
        time.sleep(0.05)
    return sink.arrivals()


@dataclass(frozen=True)
class Latencies:
    """Seconds from each inquiry's 250 to its notification at the relay."""

    values: list[float]
    missing: int  # acknowledged inquiries whose notification never arrived

    def p(self, q: int) -> float:
        if not self.values:
            return float("nan")
        if len(self.values) == 1:
            return self.values[0]
        return statistics.quantiles(self.values, n=100, method="inclusive")[q - 1]

    @property
    def max(self) -> float:
        return max(self.values, default=float("nan"))

    def line(self) -> str:
        return (
            f"p50 {self.p(50) * 1000:.0f} ms p99 {self.p(99) * 1000:.0f} ms "
            f"max {self.max * 1000:.0f} ms ({len(self.values)} mails, {self.missing} missing)"
        )


def latencies(sent: Sent, arrivals: dict[int, float]) -> Latencies:
    values = [arrivals[n] - at for n, at in sent.acked.items() if n in arrivals]
    return Latencies(sorted(values), sum(1 for n in sent.acked if n not in arrivals))


def relay_hop(port: int, count: int = 20) -> Latencies:
    """The floor: the same client handing mails straight to the relay (no mailgate)."""
    sent = Sent()
    arrivals: dict[int, float] = {}
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for n in range(count):
            started = time.monotonic()
            smtp.sendmail("form@kunden.example", ["x@autohaus.example"], _mail(10_000_000 + n))
            sent.acked[n], arrivals[n] = started, time.monotonic()
    return latencies(sent, arrivals)
