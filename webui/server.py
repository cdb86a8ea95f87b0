"""Serving the Flask app with waitress (a production WSGI server) in a thread.

``mailgate serve`` runs the web UI beside the SMTP listener and the worker in
one process, so the server must start in a thread and stop on request.
waitress's own ``close()`` only closes the listening socket: its event loop
keeps running while any browser holds a keep-alive connection (up to
``channel_timeout``, two minutes).  :meth:`WebThread.stop` therefore closes
every socket *from inside the loop thread* (waitress's trigger runs a callable
there), which ends the loop at once without racing it.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from waitress import create_server, wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer
from waitress.trigger import trigger

from mailgate.intake_pressure import CountRequests

WebServer = BaseWSGIServer | MultiSocketServer


def make_web_server(app: Flask, host: str, port: int) -> WebServer:
    """A bound, not yet running waitress server; ``.run()`` serves, ``.close()`` unbinds."""
    # ident replaces waitress's default Server header, which names the software.
    # CountRequests: the worker steps aside while a request is served (issue 18).
    return create_server(CountRequests(app), host=host, port=port, threads=4, ident="mailgate")


def _socket_map(server: WebServer) -> dict[int, Any]:
    # One listening socket gives a TcpWSGIServer (map in ``_map``), several (for
    # example "localhost" on IPv4 and IPv6) a MultiSocketServer (map in ``map``).
    return server.map if isinstance(server, MultiSocketServer) else server._map


def _loop_trigger(sockets: dict[int, Any]) -> trigger | None:
    return next((d for d in list(sockets.values()) if isinstance(d, trigger)), None)


class WebThread:
    """The web server in a daemon thread: ``start()`` serves, ``stop()`` ends it."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        # Binding happens here, so a port conflict fails before anything starts.
        self.server = make_web_server(app, host, port)
        self._thread = threading.Thread(target=self.server.run, name="mailgate-web", daemon=True)
        self._stopped = False

    def start(self) -> WebThread:
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and all open connections; returns when the loop has ended."""
        if self._stopped:
            return
        self._stopped = True
        sockets = _socket_map(self.server)
        wake = _loop_trigger(sockets) if self._thread.is_alive() else None
        if wake is not None:
            try:
                wake.pull_trigger(lambda: wasyncore.close_all(sockets, ignore_all=True))
            except OSError:
                # The trigger's pipe is already closed: the loop is closing down on its own
                # (seen once as EBADF under load); waiting for the thread is all that is left.
                pass
            self._thread.join(timeout)
        else:  # never started (or already gone): nobody else touches the sockets
            wasyncore.close_all(sockets, ignore_all=True)
        # Idle worker threads exit; a request still running gets the rest of the timeout.
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
