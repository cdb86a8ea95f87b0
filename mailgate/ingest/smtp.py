"""The SMTP listener: accepts mail for the dealer's lead addresses, nothing else.

aiosmtpd does the protocol (including the SMTP-smuggling fix of 1.4.5: only
``<CRLF>.<CRLF>`` ends DATA).  What this module adds is the contract of
RELIABILITY.md section F:

* 250 only after :func:`store_raw` has committed the raw bytes;
* 451 on any internal failure, never aiosmtpd's default 500 with internals;
* 550 for every recipient that is not a lead address or its ``+tag`` form
  (no open relay), 452 above the per-message recipient cap;
* 451 too when the store has not committed within the store timeout (half the
  idle timeout), so a hanging database never leaves a session without a reply;
* 552 above the size cap, enforced by aiosmtpd while reading, before parsing;
* slowloris defences (:mod:`mailgate.ingest.limits`): a command line must be
  complete within ``command_timeout`` of its first byte, the next command must
  come within the idle timeout, DATA must keep up ``min_data_rate`` once its
  idle-timeout credit is spent, and the whole session has a time limit; each cut
  is a 421 and a log line.  When all ``max_connections`` slots are taken, a new
  client is admitted by closing a stalled connection or one of an address over
  its ``max_connections_per_ip`` share, so tricklers lock nobody out;
* a line that never ends (64 KiB without a line feed) closes the connection,
  because aiosmtpd would buffer it whole;
* no AUTH: mailgate receives mail for its own addresses only, there is no
  submission service, so AUTH is never advertised (EHLO, HELP) and always
  refused with 502; the sixth attempt on a connection gets 421 and a close.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from mailgate.config import SmtpSettings
from mailgate.dealer_settings import load_dealer_config
from mailgate.ingest.limits import Pace, PaceLimits, SlotTable, peer_key
from mailgate.ingest.store import RawMail, store_raw_batch
from mailgate.ingest.writer import GroupCommitWriter, StoreBatch
from mailgate.logs import inbound_context

log = logging.getLogger("mailgate.smtp")

TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
RELAY_DENIED = "550 5.7.1 Relaying denied: no such lead address here"
TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
TOO_MANY_CONN = b"421 4.3.2 Too many connections, try again later\r\n"
SESSION_EXPIRED = b"421 4.4.2 Session time limit exceeded, closing connection\r\n"
IDLE_EXPIRED = b"421 4.4.2 Idle too long, closing connection\r\n"
COMMAND_TOO_SLOW = b"421 4.4.2 Command line not completed in time, closing connection\r\n"
DATA_TOO_SLOW = b"421 4.4.2 Message data arriving too slowly, closing connection\r\n"
EVICTED = {
    "stalled": b"421 4.4.2 Connection stalled and its slot is needed, closing connection\r\n",
    "over share": b"421 4.3.2 Too many connections from your address, closing connection\r\n",
}
NO_AUTH = "502 5.5.1 AUTH not available: this server only receives mail for its own addresses"
LINE_WITHOUT_END = b"500 5.5.2 Line too long, closing connection\r\n"
MAX_UNBROKEN_LINE = 64 * 1024  # far above the 1001-octet line limit aiosmtpd enforces
_PLAIN_LOCAL = re.compile(r"^[A-Za-z0-9._-]+$")
_TAG = re.compile(r"^[A-Za-z0-9_=-]{1,64}$")
# Per-connection budgets.  MTAs reuse a connection for many messages, so the
# transaction commands get room; probing commands get little.
COMMAND_CALL_LIMIT = {
    "MAIL": 5000,
    "RCPT": 50000,
    "DATA": 5000,
    "RSET": 5000,
    "NOOP": 50,
    "VRFY": 10,
    "EXPN": 10,
    "HELP": 10,
    "AUTH": 5,  # there is no AUTH: a client that keeps trying is a password guesser
    "*": 100,
}
MAX_REFUSED_RECIPIENTS = 20  # a session that keeps guessing addresses is cut off
TOO_MANY_ERRORS = "421 4.7.0 Too many refused recipients, closing connection"


def accepts_recipient(address: str, lead_addresses: frozenset[str]) -> bool:
    """Is ``address`` one of the lead addresses or its ``local+tag`` sub-address?

    Anything with relay syntax (quotes, ``%``, ``!``, source routes, IP
    literals) is refused outright rather than interpreted.
    """
    address = address.strip()
    if address.count("@") != 1:
        return False
    local, domain = address.split("@")
    base, plus, tag = local.partition("+")
    if not _PLAIN_LOCAL.match(base) or (plus and not _TAG.match(tag)):
        return False
    return f"{base.lower()}@{domain.lower()}" in lead_addresses


class LeadAddressCache:
    """The lead addresses from the dealer settings, re-read at most every few seconds."""

    def __init__(self, factory: sessionmaker[DbSession], ttl: float = 5.0) -> None:
        self._factory = factory
        self._ttl = ttl
        self._value: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def cached(self) -> frozenset[str] | None:
        """The addresses if fresh, else None (the caller reloads off the event loop)."""
        if time.monotonic() - self._loaded_at > self._ttl:
            return None
        return self._value

    def get(self) -> frozenset[str]:
        with self._lock:
            if time.monotonic() - self._loaded_at > self._ttl:
                with self._factory() as session:
                    self._value = frozenset(load_dealer_config(session).addresses)
                self._loaded_at = time.monotonic()
            return self._value


class IntakeHandler:
    """aiosmtpd handler: recipient allowlist and store-before-250."""

    def __init__(
        self,
        factory: sessionmaker[DbSession],
        settings: SmtpSettings,
        on_stored: Callable[[int], None] | None = None,
        store_batch: StoreBatch = store_raw_batch,
        store_timeout: float | None = None,
    ) -> None:
        self._settings = settings
        # Below the idle timeout, so the 451 is written before aiosmtpd would
        # drop the connection without any reply.
        self._store_timeout = store_timeout or max(settings.idle_timeout / 2, 0.1)
        self._on_stored = on_stored
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="smtp-lookup")
        self._writer = GroupCommitWriter(factory, store_batch=store_batch)
        self.addresses = LeadAddressCache(factory)

    def close(self) -> None:
        self._writer.close()
        self._executor.shutdown(wait=False)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        loop = asyncio.get_running_loop()
        refused = getattr(session, "mailgate_refused", 0)
        if refused >= MAX_REFUSED_RECIPIENTS:
            if isinstance(server, MailgateSMTP):
                server.hang_up_after_reply()
            else:
                loop.call_soon(server.transport.close)
            return TOO_MANY_ERRORS
        if len(envelope.rcpt_tos) >= self._settings.max_recipients:
            session.mailgate_refused = refused + 1  # type: ignore[attr-defined]
            return TOO_MANY_RCPT
        lead_addresses = self.addresses.cached()
        if lead_addresses is None:
            lead_addresses = await loop.run_in_executor(self._executor, self.addresses.get)
        if not accepts_recipient(address, lead_addresses):
            log.info("refused recipient %r from %r", address, session.peer)
            session.mailgate_refused = refused + 1  # type: ignore[attr-defined]
            return RELAY_DENIED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = RawMail(
            envelope.original_content or b"",
            "smtp",
            envelope_from=envelope.mail_from,
            envelope_to=tuple(envelope.rcpt_tos),
        )
        try:
            stored = await asyncio.wait_for(
                asyncio.wrap_future(self._writer.submit(mail)), self._store_timeout
            )
        except TimeoutError:
            # The mail may still be committed later; the sender re-sends it and
            # gets a second raw row (allowed: it never saw a 250 for the first).
            log.error(
                "store did not finish in %ss for %r; answered 451",
                self._store_timeout,
                session.peer,
            )
            return TEMPFAIL
        except Exception:  # noqa: BLE001 - whatever failed, the sender must retry
            log.exception("could not store mail from %r; answered 451", session.peer)
            return TEMPFAIL
        with inbound_context(stored.id):  # log lines about this mail carry its id
            log.info("stored inbound %s from %r, %d bytes", stored.id, session.peer, len(mail.raw))
            if self._on_stored is not None:
                self._on_stored(stored.id)
        return f"250 2.0.0 OK queued as {stored.id}"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd's EHLO reply minus ``AUTH``, which it would advertise after STARTTLS."""
        session.host_name = hostname
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s: %s", type(error).__name__, error)
        return TEMPFAIL


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
                log.info("refused %r: all %d connection slots taken", peer, self._slots.limit)
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


def build_tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def protocol_factory(handler: IntakeHandler, settings: SmtpSettings) -> Callable[[], SMTP]:
    limits = PaceLimits(settings.command_timeout, settings.idle_timeout, settings.min_data_rate)
    slots = SlotTable(settings.max_connections, settings.max_connections_per_ip, limits.stall_after)
    tls = build_tls_context(settings)
    hostname = settings.hostname or socket.getfqdn()  # once: getfqdn may wait on DNS

    def make() -> SMTP:
        return MailgateSMTP(
            handler,
            slots,
            limits,
            settings.session_timeout,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident="mailgate ESMTP",
            tls_context=tls,
            require_starttls=settings.require_starttls,
            timeout=settings.idle_timeout,
            command_call_limit=COMMAND_CALL_LIMIT,
        )

    return make


async def start_smtp_server(
    handler: IntakeHandler, settings: SmtpSettings
) -> asyncio.base_events.Server:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        protocol_factory(handler, settings),
        host=settings.host,
        port=settings.port,
        reuse_address=True,
    )
    log.info("SMTP listening on %s:%s", settings.host, settings.port)
    return server


class SmtpThread:
    """Runs the listener on its own event loop in a thread (tests, ``mailgate smtpd``)."""

    def __init__(self, handler: IntakeHandler, settings: SmtpSettings) -> None:
        self._handler = handler
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> SmtpThread:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            start_smtp_server(self._handler, self._settings), self._loop
        )
        self._server = future.result(timeout=10)
        return self

    @property
    def port(self) -> int:
        """The bound port (useful with ``port = 0``: the kernel picks a free one)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            current = asyncio.current_task()
            sessions = [t for t in asyncio.all_tasks() if t is not current]
            for task in sessions:
                task.cancel()
            await asyncio.gather(*sessions, return_exceptions=True)

        if self._server is not None:
            try:
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            except TimeoutError:
                log.warning("SMTP server did not close in time")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._handler.close()
