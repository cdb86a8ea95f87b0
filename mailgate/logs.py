"""Logging set-up: plain text or one JSON object per line, with the inbound id of the mail.

Why a context variable: the line that says *what* went wrong with a mail is
written deep inside the pipeline, far from the code that knows which mail it
is.  The worker and the SMTP listener set :data:`INBOUND_ID` while they handle
one mail (:func:`inbound_context`, or :func:`set_inbound_id` /
:func:`reset_inbound_id` where a ``with`` block would re-indent a hot loop); a
filter copies it onto every record written meanwhile, so ``jq
'select(.inbound_id == 42)'`` finds everything about mail 42.  A line that
names its mail with ``extra={"inbound_id": ...}`` keeps that id.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

INBOUND_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "mailgate_inbound_id", default=None
)
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def set_inbound_id(inbound_id: int | None) -> contextvars.Token[int | None]:
    """Mark the lines from here on as being about ``inbound_id``; undo with the token."""
    return INBOUND_ID.set(inbound_id)


def reset_inbound_id(token: contextvars.Token[int | None]) -> None:
    INBOUND_ID.reset(token)


@contextmanager
def inbound_context(inbound_id: int | None) -> Iterator[None]:
    """Every line logged inside the block carries ``inbound_id``."""
    token = INBOUND_ID.set(inbound_id)
    try:
        yield
    finally:
        INBOUND_ID.reset(token)


class InboundIdFilter(logging.Filter):
    """Copies the current inbound id onto each record (unless the call gave one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "inbound_id", None) is None:
            record.inbound_id = INBOUND_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, inbound_id.

    Tracebacks go into ``exc_info`` as one string, so a line is never split;
    other ``extra=`` fields are kept as they are (or their ``repr``).
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        inbound_id = getattr(record, "inbound_id", None)
        if inbound_id is not None:
            data["inbound_id"] = inbound_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in data and key != "inbound_id":
                data[key] = value if _jsonable(value) else repr(value)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with ``[inbound N]`` after the logger name when there is one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        inbound_id = getattr(record, "inbound_id", None)
        if inbound_id is None:
            return line
        prefix = f"{record.name}: "
        return line.replace(prefix, f"{record.name} [inbound {inbound_id}]: ", 1)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | tuple | dict)


# Libraries whose INFO lines describe their own machinery, not mailgate's work: Alembic
# prints about 20 lines ("setup plugin alembic.autogenerate.…", "Context impl …") on
# every command that opens the database, burying the one warning that matters.
# aiosmtpd ("mail.log") logs every SMTP command of every session at INFO - eight lines
# per received mail with the customer's envelope addresses - which cost `serve` at the
# default level a third of its intake during a burst (issue 18); the listener logs one
# line per stored mail and every refusal itself.
QUIET_LIBRARIES = ("alembic", "mail.log", "mail.debug")


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    stream: IO[str] | None = None,
    *,
    verbose: bool = False,
) -> None:
    """Set up the root logger once per process (replacing earlier handlers).

    :data:`QUIET_LIBRARIES` log at WARNING and above unless ``verbose`` (the CLI's
    ``--verbose``), which lets them follow ``level`` like every other logger.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(InboundIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
