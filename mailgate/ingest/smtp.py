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
* slowloris defences (per connection in :mod:`mailgate.ingest.session`, the
  policy in :mod:`mailgate.ingest.limits`): a command line must be
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
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from mailgate import db
from mailgate.config import SmtpSettings
from mailgate.dealer_settings import load_dealer_config
from mailgate.ingest.limits import PaceLimits, SlotTable
from mailgate.ingest.session import MailgateSMTP
from mailgate.ingest.store import RawMail, store_raw_batch
from mailgate.ingest.writer import GroupCommitWriter, StoreBatch
from mailgate.intake_pressure import PRESSURE
from mailgate.logs import inbound_context

log = logging.getLogger("mailgate.smtp")

TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
RELAY_DENIED = "550 5.7.1 Relaying denied: no such lead address here"
TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
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
        # A reader (SQLite): the lookup never holds the write lock the intake writer needs.
        self._factory = db.reader_factory(factory)
        self._own_engine = self._factory is not factory  # made here: closed by close()
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

    def close(self) -> None:
        if self._own_engine:
            self._factory.kw["bind"].dispose()


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
        self.addresses.close()

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
            with PRESSURE.storing():  # the worker steps aside while sessions wait here
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
