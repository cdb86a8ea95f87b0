"""What is stored about a failed webhook delivery: a short class, never the raw error.

The socket's own text ("[Errno 111] Connection refused", "timed out",
"Name or service not known", a TLS library message, a receiver's reason
phrase) tells whoever can edit webhooks which ports and hosts exist inside
the network: stored and shown, it turns the webhook form into a port
scanner.  So a delivery keeps one of :data:`ERROR_CLASSES` (or ``HTTP <status>``);
the raw text goes to the server log only, for the host operator.  The web UI
has a label for each class (a consistency test keeps both lists equal).
"""

from __future__ import annotations

import http.client
import socket
import ssl

NOT_ALLOWED = "destination not allowed"
INVALID_URL = "invalid address"
NOT_RESOLVED = "name not resolved"
REFUSED = "connection refused"
TIMEOUT = "timeout"
TLS = "TLS error"
UNREACHABLE = "connection failed"
PROTOCOL = "protocol error"
DELETED = "webhook deleted"
ERROR_CLASSES = (
    NOT_ALLOWED,
    INVALID_URL,
    NOT_RESOLVED,
    REFUSED,
    TIMEOUT,
    TLS,
    UNREACHABLE,
    PROTOCOL,
    DELETED,
)
HTTP_PREFIX = "HTTP "


def http_status(status: int) -> str:
    """The class of an HTTP answer: the status only (the reason phrase is the receiver's text)."""
    return f"{HTTP_PREFIX}{int(status)}"


def error_class(exc: BaseException) -> str:
    """The class of a network error; anything unexpected is ``connection failed``."""
    if isinstance(exc, socket.gaierror):
        return NOT_RESOLVED
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return TLS
    if isinstance(exc, http.client.HTTPException):
        return PROTOCOL
    return UNREACHABLE


def is_known(detail: str | None) -> bool:
    """Is ``detail`` a class this module stores (and not text from before it existed)?"""
    if not detail:
        return False
    if detail.startswith(HTTP_PREFIX):
        return detail[len(HTTP_PREFIX) :].isdigit()
    return detail in ERROR_CLASSES
