"""Hostile input is a 400 or a 404 with a clear message, never a 500: the app-wide limits.

The web UI takes ids in paths, dates and texts in query strings and forms, and JSON
bodies in the API.  Values that Python accepts but a database or ``datetime`` does
not — an id beyond PostgreSQL's ``integer`` (a ``DataError`` there, an
``OverflowError`` in SQLite's driver), a date whose time-zone shift leaves year
1..9999, a NUL character (PostgreSQL refuses it in text), JSON nested deeper than
Python's recursion limit — would otherwise surface as server errors.  The limits live here,
in one place, so every route gets them:

* ``<int:…>`` in every URL rule is :class:`BoundedInt`: ASCII digits up to the
  database's integer range; anything else does not match (404, nothing to find).
* ``<linktoken:…>`` (:class:`LinkToken`) takes only the characters a signed token
  has; a non-ASCII "token" is not found (404).
* :func:`refuse_nul` refuses a NUL character in the path, query string or form of a
  page (400); the API answers for its own arguments (its documented behaviour).
* :func:`day` reads an ISO date within :data:`FIRST_DAY`..:data:`LAST_DAY`, the
  range every date filter accepts, so arithmetic and time-zone shifts on it stay in
  range (:func:`clamped_day` moves a date outside into it, for range bounds).
* :func:`within_day_range` is the same range as a WTForms validator for date fields.
* :func:`json_body` parses a request body with a size and a nesting-depth limit.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

from flask import Flask, request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter, IntegerConverter, Map
from wtforms.validators import StopValidation

DB_INT_MAX = 2**31 - 1  # PostgreSQL's ``integer`` (the id columns); SQLite's is wider
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)  # far from 9999-12-31: "the day after" and +62 days still work
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_JSON_BYTES = 64 * 1024  # the API's bodies are a status or a note (MAX_NOTE characters)
MAX_JSON_DEPTH = 32


class BoundedInt(IntegerConverter):
    """``<int:…>`` for ids: ASCII digits, at most :data:`DB_INT_MAX`, else no match (404).

    werkzeug's converter takes any Unicode digit (``٥``) and any size, and an id of
    ``99999999999999999999`` then fails inside the database driver.
    """

    regex = r"[0-9]{1,18}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)


class LinkToken(BaseConverter):
    """``<linktoken:…>`` for signed tokens in URLs: URL-safe base64 and dots, at most 512
    characters; anything else (``/m/ä€😀``, a NUL) is no link of ours (404), before any
    code tries to read it as ASCII."""

    regex = r"[A-Za-z0-9_.\-]{1,512}"


def iso_day(text: str | None) -> date | None:
    """An ISO date (``2026-11-30``), any year ``datetime`` holds; None for anything else.

    Not ``date.fromisoformat`` alone: it also takes ``20261130`` and ``2026-W48-1``.
    """
    if not text or not ISO_DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2026-02-30, 9999-99-99, 0000-01-01
        return None


def day(text: str | None) -> date | None:
    """An ISO date within FIRST_DAY..LAST_DAY, or None for anything else (a filter then
    ignores it): ``0001-01-01`` is a date, but no time zone can shift it to UTC."""
    parsed = iso_day(text)
    return parsed if parsed is not None and FIRST_DAY <= parsed <= LAST_DAY else None


def clamped_day(text: str | None) -> date | None:
    """An ISO date, moved into FIRST_DAY..LAST_DAY: for a bound of a range, ``0333-07-22``
    selects what ``1900-01-01`` does (no lead is older), and stays a valid request."""
    parsed = iso_day(text)
    return None if parsed is None else min(max(parsed, FIRST_DAY), LAST_DAY)


def within_day_range(_form: object, field: Any) -> None:
    """WTForms validator for a date or date-time field: within FIRST_DAY..LAST_DAY.

    ``9999-12-31T23:59`` parses, and then the dealer's time zone shifts it beyond
    what ``datetime`` holds; a clear field error instead.
    """
    value = field.data
    if value is None:
        return
    as_day = value.date() if isinstance(value, datetime) else value
    if not FIRST_DAY <= as_day <= LAST_DAY:
        raise StopValidation(day_range_message())


def day_range_message() -> str:
    return _(
        "Please enter a date between %(first)s and %(last)s.",
        first=FIRST_DAY.isoformat(),
        last=LAST_DAY.isoformat(),
    )


class JsonError(ValueError):
    """The body is not JSON mailgate accepts; the message says why (for a 400)."""


def json_body(raw: bytes) -> object:
    """The JSON value of ``raw``, refused (:class:`JsonError`) when too large, not UTF-8,
    malformed or nested deeper than MAX_JSON_DEPTH.

    The depth is measured before parsing: ``json.loads`` of 100,000 nested brackets
    raises RecursionError deep in the decoder, and no body mailgate reads is deeper
    than two levels.
    """
    if len(raw) > MAX_JSON_BYTES:
        raise JsonError(f"the body must be at most {MAX_JSON_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonError("the body must be UTF-8") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise JsonError(f"the body must not be nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise JsonError("the body is not valid JSON") from None


def _depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (a linear scan, no recursion)."""
    deepest = level = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            level += 1
            deepest = max(deepest, level)
        elif char in "]}":
            level -= 1
    return deepest


class RefusedInput(BadRequest):
    """A 400 whose error page says what was wrong (``explanation``, in the user's language)."""

    def __init__(self, explanation: str) -> None:
        super().__init__(description=explanation)
        self.explanation = explanation


def refuse_nul() -> None:
    """A NUL character in a page's path, query string or form is refused with a 400.

    No browser sends one from a text field, PostgreSQL cannot store or compare it in
    text, and a filter silently ignoring it would hide the attempt.  The REST API
    answers for its own arguments and bodies (problem documents).
    """
    if request.path.startswith("/api/"):
        return
    values = [request.path, *request.args.keys(), *_values(request.args)]
    if request.method == "POST" and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        values += [*request.form.keys(), *_values(request.form)]
    if any("\x00" in value for value in values):
        raise RefusedInput(_("The request contains a NUL character, which is not allowed."))


def _values(multi: Any) -> list[str]:
    return [value for _key, value in multi.items(multi=True)]


def init_app(app: Flask) -> None:
    """Before any rule is added: ``<int:…>`` becomes the bounded converter app-wide."""
    app.url_map.converters["int"] = BoundedInt
    app.url_map.converters["linktoken"] = LinkToken
    app.before_request(refuse_nul)
