"""One HTTP POST to a checked destination, connected to the address that was checked.

Why not urllib or requests: both resolve the host name again when they
connect, so a DNS answer that changes after :func:`.destination.check_destination`
(rebinding) would send the request somewhere unchecked, and both follow proxies
and redirects on their own.  Here the socket goes to one of
:attr:`.destination.Target.addresses`; ``Host:`` and TLS (SNI and the
certificate check) use the name, so virtual hosts and HTTPS work as usual.
Redirects are never followed: a 3xx is an answer like any other status.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from functools import cache

from .destination import Target

MAX_ANSWER = 65536


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _connect(addresses: tuple[str, ...], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that answers (each one was checked)."""
    error: OSError = ConnectionError("no checked address")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            error = exc
    raise error


class _PinnedConnection(http.client.HTTPConnection):
    """http.client speaking to ``target.host`` over a socket to a checked address."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.default_port = 443 if target.scheme == "https" else 80  # Host: without :443
        self._target = target

    def connect(self) -> None:
        sock = _connect(self._target.addresses, self._target.port, self.timeout)
        if self._target.scheme == "https":
            try:
                sock = _tls_context().wrap_socket(sock, server_hostname=self._target.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock


def post(target: Target, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` and return the status; network, TLS and protocol errors are raised."""
    connection = _PinnedConnection(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        response.read(MAX_ANSWER)
        return response.status
    finally:
        connection.close()
