"""Checking a mail template before it is used: variables, syntax, sandbox, sample render.

Why a check of its own: a dealer's template that uses a variable the mail does
not have, a forbidden tag or a sandbox-refused attribute must be refused when
the admin saves it (web editor, ``mailgate settings import``), with a message
saying what is wrong and where — not discovered at 03:00 when a notification
fails.  Each problem is a :class:`TemplateProblem` (data, no traceback); the
CLI prints it in English (``str()``), the web UI words it in German from its
fields.

The variables a template may use are those of its documented sample context
(:mod:`mailgate.outbound.samples`) plus ``dealer_name``: the explicit
allowlist.  :func:`template_data` hands a template only those names at send
time, so a template cannot see more than the editor promised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import (
    Environment,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
)
from jinja2.sandbox import MAX_RANGE

from mailgate.outbound.samples import SAMPLE_CONTEXTS
from mailgate.outbound.sandbox import (
    ForbiddenTagError,
    PlainData,
    SecurityError,
    TemplateLimitError,
    TemplateTooLongError,
)

ALWAYS_ALLOWED = frozenset({"dealer_name"})
_DETAIL_LIMIT = 300
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class TemplateProblem:
    """One thing wrong with one template file.

    ``kind`` is one of ``name`` (not a template file name), ``unknown_template``
    (replaces no packaged template), ``syntax``, ``forbidden_tag``,
    ``unknown_variable``, ``undefined`` (a field the data lacks), ``security``
    (refused by the sandbox), ``limit`` (too much output/work) or ``error``.
    ``names`` carries the unknown variables, the tag, or the limit's name and maximum.
    """

    file: str
    kind: str
    detail: str = ""
    line: int | None = None
    names: tuple[str, ...] = ()
    error: str = ""  # the exception's class name, for the English text

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file} (line {self.line})"
        if self.kind == "name":
            return f"{where}: not a template name like de/notification.txt"
        if self.kind == "unknown_template":
            return f"{where}: replaces no packaged template"
        if self.kind == "unknown_variable":
            return f"{where}: UndefinedError: unknown variable(s) {', '.join(self.names)}"
        return f"{where}: {self.error or 'TemplateError'}: {self.detail}"


def allowed_variables(name: str) -> frozenset[str] | None:
    """The variables template ``name`` is documented to get, or None if we have no sample."""
    sample = SAMPLE_CONTEXTS.get(name)
    return None if sample is None else frozenset(sample) | ALWAYS_ALLOWED


def template_data(name: str, context: Mapping[str, Any]) -> PlainData:
    """The part of ``context`` template ``name`` may see: its allowlisted variables only,
    as plain data (:class:`~mailgate.outbound.sandbox.PlainData`; TypeError for anything else)."""
    allowed = allowed_variables(name)
    if allowed is None:
        return PlainData.of(context)
    return PlainData.of({key: value for key, value in context.items() if key in allowed})


def problem_from(relative: str, exc: BaseException) -> TemplateProblem:
    """A :class:`TemplateProblem` for an exception raised parsing or rendering ``relative``."""
    detail = _one_line(getattr(exc, "message", None) or str(exc))
    kind, names = "error", ()
    if isinstance(exc, (TemplateLimitError, TemplateTooLongError)):
        kind, names = "limit", (exc.limit, str(exc.maximum))
    elif isinstance(exc, ForbiddenTagError):
        kind, names = "forbidden_tag", (exc.tag,)
    elif isinstance(exc, TemplateSyntaxError):
        kind = "syntax"
    elif isinstance(exc, SecurityError):
        kind = "security"
    elif isinstance(exc, UndefinedError):
        kind = "undefined"
    elif isinstance(exc, TemplateNotFound):
        kind = "unknown_template"
    elif isinstance(exc, RecursionError):
        kind, names = "limit", ("recursion", "0")
    elif isinstance(exc, OverflowError) and "MAX_RANGE" in str(exc):
        kind, names = "limit", ("range", str(MAX_RANGE))
    return TemplateProblem(
        file=relative,
        kind=kind,
        detail=detail,
        line=_line_of(exc),
        names=names,
        error=type(exc).__name__,
    )


def check_template(
    env: Environment, relative: str, name: str, context: Mapping[str, Any] | None
) -> list[TemplateProblem]:
    """Parse ``relative`` in ``env``, check its variables, render it with ``context``.

    Returns at most one problem per stage that fails (the first error is the
    one worth fixing first); an empty list means the file may be used.
    """
    try:
        source = env.loader.get_source(env, relative)[0]  # type: ignore[union-attr]
        tree = env.parse(source, relative)
        template = env.get_template(relative)
    except Exception as exc:  # noqa: BLE001 - any failure is the admin's to read, not a 500
        return [problem_from(relative, exc)]
    allowed = allowed_variables(name)
    if allowed is not None:
        unknown = sorted(meta.find_undeclared_variables(tree) - allowed - set(env.globals))
        if unknown:
            line = _first_use(source, unknown[0])
            return [
                TemplateProblem(
                    relative,
                    "unknown_variable",
                    names=tuple(unknown),
                    line=line,
                    error="UndefinedError",
                )
            ]
    if context is None:
        return []
    try:
        template.render(template_data(name, context))
    except Exception as exc:  # noqa: BLE001 - any failure is the admin's to read, not a 500
        return [problem_from(relative, exc)]
    return []


def _one_line(text: str) -> str:
    text = " ".join(_NOT_PRINTABLE.sub(" ", text).split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _line_of(exc: BaseException) -> int | None:
    """The template line: a syntax error knows it, a runtime error's rewritten traceback too."""
    line = getattr(exc, "lineno", None)
    if isinstance(line, int):
        return line
    found = None
    tb = exc.__traceback__
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


def _first_use(source: str, variable: str) -> int | None:
    match = re.search(rf"(?<![\w.]){re.escape(variable)}(?!\w)", source)
    return None if match is None else source.count("\n", 0, match.start()) + 1
