"""A TCP proxy in front of ``smtp-sink`` that drops the connection after DATA on a share of mails.

smtp-sink's ``-q .`` hangs up after *every* mail's final dot; row O3 wants it on
5 % of sends.  The proxy passes bytes through unchanged and watches the client's
stream for the end-of-data marker ``CRLF.CRLF`` (dot-stuffing guarantees it
appears nowhere else).  For a chosen mail it forwards the dot, so the sink has
the whole message (and dumps it), then cuts the client off before the sink's
250 can reach it: the RFC 1047 duplicate window, made to happen on demand.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field

END_OF_DATA = b"\r\n.\r\n"


@dataclass
class DropAfterDataProxy:
    """Listens on ``port``, relays to ``target_port``; ``drops`` counts the injected faults."""

    target_port: int
    share: float
    seed: int = 8
    port: int = 0
    drops: int = 0
    mails: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._random = random.Random(self.seed)
        self._thread = threading.Thread(target=self._run, name="smtp-fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._session, "127.0.0.1", self.port)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    def _drop_this_mail(self) -> bool:
        with self._lock:
            self.mails += 1
            drop = self._random.random() < self.share
            self.drops += drop
            return drop

    async def _session(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        try:
            sink_r, sink_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        cut = asyncio.Event()

        async def upstream() -> None:  # client -> sink, watching for the final dot
            tail = b""
            while not cut.is_set():
                chunk = await client_r.read(65536)
                if not chunk:
                    break
                seen = tail + chunk
                ends = seen.count(END_OF_DATA)
                sink_w.write(chunk)
                await sink_w.drain()
                tail = seen[-(len(END_OF_DATA) - 1) :]
                if [self._drop_this_mail() for _ in range(ends)].count(True):
                    cut.set()  # the sink has the dot; the client never hears back
            sink_w.close()

        async def downstream() -> None:  # sink -> client, unless cut
            while not cut.is_set():
                chunk = await sink_r.read(65536)
                if not chunk or cut.is_set():
                    break
                client_w.write(chunk)
                await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        cut_wait = asyncio.create_task(cut.wait())
        await asyncio.wait([*tasks, cut_wait], return_when=asyncio.FIRST_COMPLETED)
        client_w.close()  # a cut, or one side ended: hang up on the client
        await asyncio.sleep(0.05)  # let the sink read the dot before it sees EOF
        sink_w.close()
        for task in [*tasks, cut_wait]:
            task.cancel()
        await asyncio.gather(*tasks, cut_wait, return_exceptions=True)
