"""One SMTP connection of the listener: aiosmtpd's protocol with mailgate's limits.

What :mod:`mailgate.ingest.smtp`'s handler cannot see from its hooks lives here,
on the connection: its slot in the listener (:class:`~mailgate.ingest.limits.SlotTable`),
its slowloris deadlines (:class:`~mailgate.ingest.limits.Pace`, checked by one
timer per connection that fires at the next deadline), the whole-session limit,
the refusal of endless lines and of AUTH, and hanging up after a reply.  Every
cut is a 421 with its reason and a log line.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any, AnyStr

from aiosmtpd.smtp import SMTP

from mailgate.ingest.limits import Pace, PaceLimits, SlotTable, peer_key

if TYPE_CHECKING:
    from mailgate.ingest.smtp import IntakeHandler

log = logging.getLogger("mailgate.smtp")

TOO_MANY_CONN = b"421 4.3.2 Too many connections, try again later\r\n"
SESSION_EXPIRED = b"421 4.4.2 Session time limit exceeded, closing connection\r\n"
IDLE_EXPIRED = b"421 4.4.2 Idle too long, closing connection\r\n"
COMMAND_TOO_SLOW = b"421 4.4.2 Command line not completed in time, closing connection\r\n"
DATA_TOO_SLOW = b"421 4.4.2 Message data arriving too slowly, closing connection\r\n"
NO_AUTH = "502 5.5.1 AUTH not available: this server only receives mail for its own addresses"
LINE_WITHOUT_END = b"500 5.5.2 Line too long, closing connection\r\n"
MAX_UNBROKEN_LINE = 64 * 1024  # far above the 1001-octet line limit aiosmtpd enforces
EVICTED = {
    "stalled": b"421 4.4.2 Connection stalled and its slot is needed, closing connection\r\n",
    "over share": b"421 4.3.2 Too many connections from your address, closing connection\r\n",
}


class MailgateSMTP(SMTP):
    """aiosmtpd's SMTP with fair connection slots, slowloris deadlines and a session limit."""

    def __init__(
        self,
        handler: IntakeHandler,
        slots: SlotTable,
        limits: PaceLimits,
        session_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._slots = slots
        self._limits = limits
        self._session_timeout = session_timeout
        self._pace: Pace | None = None  # set when the connection gets a slot
        self._counted = False
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._watch: asyncio.TimerHandle | None = None  # fires at the pace's next deadline
        self._watch_at = math.inf
        self._unbroken = 0  # bytes received since the last line feed
        self._hang_up = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first_contact = self._original_transport is None and not self._counted
        if first_contact:
            now = self.loop.time()
            peer = transport.get_extra_info("peername")
            admission = self._slots.admit(peer_key(peer), self, now)
            if not admission.admitted:
                self._refused = True
                count = self._slots.refusals.refused(now)
                if count:
                    log.warning(
                        "refused %d connection(s) since the last report: all %d slots taken, "
                        "none stalled or over its share (the latest from %r)",
                        count,
                        self._slots.limit,
                        peer,
                    )
                transport.write(TOO_MANY_CONN)  # type: ignore[attr-defined]
                transport.close()
                return
            if isinstance(admission.evicted, MailgateSMTP):
                admission.evicted.evict(admission.reason, peer)
            self._pace = Pace(self._limits, now)
            self._counted = True
            self._deadline = self.loop.call_later(self._session_timeout, self._expire)
        super().connection_made(transport)

    def stalled_for(self, now: float) -> float | None:
        """For the slot table: seconds without progress, None while a handler runs."""
        return self._pace.stalled_for(now) if self._pace is not None else None

    def evict(self, reason: str, newcomer: Any) -> None:
        """Give up the slot (already released by the table) to ``newcomer``."""
        self._close_with(EVICTED[reason], f"{reason}, slot given to {newcomer!r}")

    async def smtp_AUTH(self, arg: str) -> None:
        """There is no AUTH (no submission service); undecorated, so HELP does not list it."""
        await self.push(NO_AUTH)

    def hang_up_after_reply(self) -> None:
        """Close the connection right after the next reply, ignoring pipelined commands.

        Closing the transport alone is not enough: aiosmtpd keeps answering the
        commands already buffered (a pipelined flood of 1,000 RCPTs got 1,000
        replies), and over TLS it could even run a buffered DATA.
        """
        self._hang_up = True

    async def push(self, status: AnyStr) -> None:
        pace = self._pace
        if pace is not None:
            now = self.loop.time()
            if pace.in_data:  # the reply to the message ends DATA
                pace.leave_data(now, self._unbroken > 0)
                self._reset_timeout()
            elif status[:3] in ("354", b"354"):
                # DATA is paced by its data rate, not by aiosmtpd's idle timer,
                # which would otherwise cut a long upload on a slow but steady link.
                pace.enter_data(now)
                if self._timeout_handle is not None:
                    self._timeout_handle.cancel()
            else:
                pace.replied(now)
            self._arm()
        await super().push(status)
        if self._hang_up:
            if self.transport is not None:
                self.transport.close()
            raise asyncio.CancelledError  # ends the session task, like a lost connection

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        """While a handler runs (lookup, store) the client owes nothing: no deadline or eviction."""
        pace = self._pace
        if pace is None:
            return await super()._call_handler_hook(command, *args)
        pace.busy = True
        try:
            return await super()._call_handler_hook(command, *args)
        finally:
            pace.busy = False
            self._arm()

    def data_received(self, data: bytes) -> None:
        # aiosmtpd 1.4.6 keeps every fragment of a DATA line until its CRLF, even
        # after deciding to refuse it, so one endless line would eat all memory.
        # Such a line is refused anyway (limit 1001 octets); stop reading it.
        newline = data.rfind(b"\n")
        self._unbroken = len(data) - newline - 1 if newline >= 0 else self._unbroken + len(data)
        if self._unbroken > MAX_UNBROKEN_LINE:
            log.info("closing %r: line without end", self.session and self.session.peer)
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(LINE_WITHOUT_END)  # type: ignore[attr-defined]
                self.transport.close()
            return
        # Bytes alone earn no time: a command counts when its line is complete,
        # DATA by its rate (Pace), so one byte now and then holds nothing open.
        if self._pace is not None:
            self._pace.received(self.loop.time(), len(data), newline >= 0, self._unbroken > 0)
            self._arm()
        super().data_received(data)

    def _arm(self) -> None:
        """Make the watch fire no later than the pace's next deadline."""
        assert self._pace is not None
        deadline = self._pace.next_deadline()
        if deadline is None or deadline >= self._watch_at:
            return  # none, or the watch fires first and re-arms
        if self._watch is not None:
            self._watch.cancel()
        self._watch = self.loop.call_at(deadline, self._check)
        self._watch_at = deadline

    def _check(self) -> None:
        self._watch, self._watch_at = None, math.inf
        pace = self._pace
        if pace is None or pace.busy:
            return  # the handler's end re-arms
        overdue = pace.overdue(self.loop.time())
        if overdue == "command":
            why = f"command line not completed within {self._limits.command_timeout} s"
            self._close_with(COMMAND_TOO_SLOW, why)
        elif overdue == "data":
            why = f"DATA below {self._limits.min_data_rate} bytes/s"
            self._close_with(DATA_TOO_SLOW, why)
        else:
            self._arm()

    def _timeout_cb(self) -> None:
        """aiosmtpd's idle timer: say why before closing (RFC 5321 4.5.3.2)."""
        self._close_with(IDLE_EXPIRED, f"idle for {self._timeout_duration} s")

    def _expire(self) -> None:
        self._close_with(SESSION_EXPIRED, "session time limit")

    def _close_with(self, reply: bytes, why: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            log.info("closing %r: %s", self.session and self.session.peer, why)
            self.transport.write(reply)  # type: ignore[attr-defined]
            self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._slots.release(self)  # idempotent: an evicted connection was released already
        for timer in (self._deadline, self._watch):
            if timer is not None:
                timer.cancel()
        super().connection_lost(error)
