"""IDLE news that arrives together with "+ idling" is acted on at once.

Dovecot syncs right after answering IDLE and announces, often in the same TCP
segment, a mail that came between the poller's NOOP and its IDLE. imaplib reads
that along with "+ idling" into its buffer, where a poll() on the socket cannot
see it; the poller must look there, or the mail waits for the next renewal (up
to the mailbox interval). A scripted server makes the timing exact.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from imapclient import IMAPClient

from mailgate import db
from mailgate.imap.poller import Poller
from mailgate.imap.settings import Mailbox
from mailgate.imap.tuning import Tuning

INTERVAL = 30.0  # the renewal a missed announcement would wait for


class ScriptedImapServer:
    """Answers one client: CAPABILITY, any command with OK, IDLE with ``on_idle``."""

    def __init__(self, on_idle: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.on_idle = on_idle
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK scripted IMAP ready\r\n")
            idle_tag = b""
            for line in lines:
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                command = rest.split(b" ", 1)[0].upper()
                if tag.upper() == b"DONE":
                    conn.sendall(idle_tag + b" OK Idle completed\r\n")
                elif command == b"CAPABILITY":
                    conn.sendall(b"* CAPABILITY IMAP4rev1 IDLE\r\n" + tag + b" OK done\r\n")
                elif command == b"IDLE":
                    idle_tag = tag
                    self.on_idle(conn)
                elif command == b"LOGOUT":
                    conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                    return
                else:
                    conn.sendall(tag + b" OK done\r\n")


@pytest.fixture
def poller(sqlite_url: str) -> Iterator[Poller]:
    engine = db.create_db_engine(sqlite_url)
    mailbox = Mailbox(
        name="verkauf", host="127.0.0.1", port=0, security="none", username="x", interval=INTERVAL
    )
    yield Poller(
        db.make_session_factory(engine), mailbox, Tuning(idle_slice=0.2), threading.Event()
    )
    engine.dispose()


def _idle_in_thread(
    poller: Poller, server: ScriptedImapServer
) -> tuple[threading.Thread, IMAPClient]:
    client = IMAPClient("127.0.0.1", server.port, ssl=False, timeout=10)
    thread = threading.Thread(target=poller._idle, args=(client,), daemon=True)
    thread.start()
    return thread, client


def test_news_in_the_same_segment_as_idling_ends_the_idle_at_once(poller: Poller) -> None:
    server = ScriptedImapServer(lambda conn: conn.sendall(b"+ idling\r\n* 7 EXISTS\r\n"))
    thread, client = _idle_in_thread(poller, server)
    thread.join(5)
    waited_out = thread.is_alive()
    poller.stop.set()  # a failing run ends within a slice instead of the interval
    thread.join(5)
    client.logout()
    assert not waited_out, "the EXISTS read along with '+ idling' was left in the buffer"


def test_without_news_idle_waits_until_the_server_announces_some(poller: Poller) -> None:
    announced = threading.Event()

    def idling_then_news(conn: socket.socket) -> None:
        conn.sendall(b"+ idling\r\n")
        threading.Timer(1.0, lambda: (announced.set(), conn.sendall(b"* 8 EXISTS\r\n"))).start()

    server = ScriptedImapServer(idling_then_news)
    thread, client = _idle_in_thread(poller, server)
    thread.join(10)
    assert not thread.is_alive(), "the EXISTS sent during IDLE did not end it"
    assert announced.is_set(), "IDLE ended before the server announced anything"
    client.logout()
