"""Errors as ``application/problem+json`` (RFC 9457): type, title, status, detail."""

from __future__ import annotations

from flask import Response, json
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str = "") -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mailgate"'
    return response


def problem_for(exc: HTTPException) -> Response:
    """Any HTTP error under ``/api/`` (unknown route, wrong method…) as a problem document."""
    code = exc.code or 500
    response = problem(code, exc.name, exc.description or "")
    if code == 405 and exc.response is None:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


class ApiError(Exception):
    """Raised by a view to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
