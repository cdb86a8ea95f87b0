"""Login for htmx fragments: never a redirect to the login page (it would land in the list).

A poll (``every 30s``) after the session ended gets 286, htmx's "stop polling", with an
empty body, like the menu's overdue badge (:mod:`..live`); any other fragment request
without a login gets 401, which htmx does not swap.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, request
from flask_login import current_user

F = TypeVar("F", bound=Callable[..., Any])
HTMX_STOP_POLLING = 286


def fragment_login(poll: bool = False) -> Callable[[F], F]:
    """Like ``login_required`` for a fragment endpoint; ``poll``: it is asked for by a timer."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                htmx = request.headers.get("HX-Request") == "true"
                return Response(status=HTMX_STOP_POLLING if poll and htmx else 401)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


__all__ = ["HTMX_STOP_POLLING", "fragment_login"]
