"""A small asyncio TCP fault proxy for the IMAP fault tests (RELIABILITY.md G.4 I3/I4).

Sits between the poller and Dovecot on a loopback port and misbehaves on
demand, the way real networks do:

* ``blackhole()``: bytes stop flowing both ways on every connection, old and
  new (a new connection is accepted but never reaches the server), until
  ``heal()``; nothing is closed, so only a timeout can tell;
* ``reset_mid_fetch(n)``: the next ``n`` connections are cut with a TCP RST
  after part of a ``FETCH ... BODY.PEEK[]`` answer has passed;
* ``slow(rate)``: the server's bytes reach the client at ``rate`` bytes/s.

It also counts what the client sent (``commands``), e.g. how often IDLE was
issued.  It runs its own event loop in a thread, so the synchronous poller
under test needs nothing special.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

CHUNK = 1024


@dataclass
class FaultProxy:
    """A loopback TCP proxy to ``target_port``; ``port`` is where clients connect."""

    target_port: int
    port: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    resets_done: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _flowing: asyncio.Event | None = None
    _resets_left: int = 0
    _reset_after: int = 0
    _rate: float = 0.0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def start(self) -> FaultProxy:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._open())
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=main, name="fault-proxy", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the fault proxy did not start"
        return self

    async def _open(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)

    # -- faults ---------------------------------------------------------------

    def _call(self, action: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(action)  # type: ignore[arg-type]

    def blackhole(self) -> None:
        assert self._flowing is not None
        self._call(self._flowing.clear)

    def heal(self) -> None:
        """Back to a clean link: flowing, full speed, no resets pending."""
        assert self._flowing is not None
        self._rate, self._resets_left = 0.0, 0
        self._call(self._flowing.set)

    def reset_mid_fetch(self, connections: int, after_bytes: int = 2048) -> None:
        self._reset_after, self._resets_left = after_bytes, connections

    def slow(self, bytes_per_second: float) -> None:
        self._rate = bytes_per_second

    # -- the proxy ------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        assert self._flowing is not None
        await self._flowing.wait()  # a blackholed link accepts, then says nothing
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        fetching = asyncio.Event()
        cut = self._resets_left > 0
        if cut:
            self._resets_left -= 1
        tasks = [
            asyncio.ensure_future(self._client_to_server(reader, up_writer, fetching)),
            asyncio.ensure_future(
                self._server_to_client(up_reader, writer, fetching if cut else None)
            ),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
                self._writers.discard(w)

    async def _client_to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fetching: asyncio.Event
    ) -> None:
        assert self._flowing is not None
        buffer = b""
        while data := await reader.read(CHUNK):
            await self._flowing.wait()
            buffer = (buffer + data)[-4096:]
            *lines, buffer = buffer.split(b"\r\n")
            for line in lines:
                words = line.split()
                if len(words) >= 2:
                    verb = words[2] if words[1].upper() == b"UID" and len(words) > 2 else words[1]
                    self.commands[verb.decode(errors="replace").upper()] += 1
                elif line.strip().upper() == b"DONE":
                    self.commands["DONE"] += 1
                if b"BODY.PEEK[]" in line.upper():
                    fetching.set()
            writer.write(data)
            await writer.drain()

    async def _server_to_client(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        reset_on_fetch: asyncio.Event | None,
    ) -> None:
        assert self._flowing is not None
        sent_in_fetch = 0
        while data := await reader.read(CHUNK):
            await self._flowing.wait()
            if reset_on_fetch is not None and reset_on_fetch.is_set():
                sent_in_fetch += len(data)
                if sent_in_fetch > self._reset_after:
                    _reset(writer)
                    self.resets_done += 1
                    return
            if self._rate:
                await asyncio.sleep(len(data) / self._rate)
            writer.write(data)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
