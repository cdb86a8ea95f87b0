"""Group commit for SMTP intake: one thread stores queued mails in shared transactions.

With SQLite only one writer can commit at a time, and every commit is an
fsync.  Letting each SMTP session commit on its own makes sessions queue on the
database lock (SQLite's busy handler sleeps in coarse steps, which shows up as
tail latency).  Instead every session hands its mail to this writer and waits;
the writer takes everything queued so far, stores it in one transaction and
commits once, then answers every waiting session.  The promise is unchanged:
no session gets its 250 before its mail is committed.  A session that stopped
waiting (store timeout, answered 451) cancels its request; if the writer has not
taken it yet, the mail is not stored at all.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from sqlalchemy.orm import Session, sessionmaker

from mailgate.ingest.store import RawMail, StoredMail, store_raw_batch

log = logging.getLogger("mailgate.ingest")

StoreBatch = Callable[[sessionmaker[Session], Sequence[RawMail]], list[StoredMail]]
_STOP = object()


class GroupCommitWriter:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        max_batch: int = 64,
        store_batch: StoreBatch = store_raw_batch,
    ) -> None:
        self._factory = factory
        self._max_batch = max_batch
        self._store_batch = store_batch
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
        self._thread.start()

    def submit(self, mail: RawMail) -> Future[StoredMail]:
        future: Future[StoredMail] = Future()
        self._queue.put((mail, future))
        return future

    def close(self, timeout: float = 10) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(more)
            # A session that gave up waiting (its store timeout answered 451)
            # cancelled its future: skip that mail.  The rest are marked running,
            # so a late cancel can no longer make ``set_result`` raise here.
            live = [pair for pair in batch if pair[1].set_running_or_notify_cancel()]  # type: ignore[index]
            if live:
                self._commit(live)  # type: ignore[arg-type]

    def _commit(self, batch: list[tuple[RawMail, Future[StoredMail]]]) -> None:
        try:
            stored = self._store_batch(self._factory, [mail for mail, _ in batch])
        except Exception as exc:  # noqa: BLE001 - every waiting session answers 451
            log.exception("could not store %d mails", len(batch))
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, stored, strict=True):
            future.set_result(result)
