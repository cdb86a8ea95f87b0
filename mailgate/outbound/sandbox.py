"""The sandbox every mail template renders in: no Python objects, bounded work.

Why: an admin (or whoever can write the dealer's ``templates_dir``) edits mail
templates, and full Jinja2 gave them the server —
``{{ cycler.__init__.__globals__.os.popen('id').read() }}`` ran a shell.  So
every mail template, packaged or the dealer's own, renders in
:class:`MailSandbox`, an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`
narrowed further to an allowlist:

* **Data only.** The context is copied into plain data first
  (:func:`plain_data`: dicts, lists, strings, numbers, dates); anything else —
  an ORM object with its session — is refused before rendering.  Attribute
  access reaches data fields and a short list of harmless methods
  (``dict.get``, ``str.startswith``…, :data:`SAFE_METHODS`); every other
  attribute, every underscore name and every callable outside that list is a
  :class:`~jinja2.sandbox.SecurityError`.  ``str.format`` is not offered at
  all (the sandbox's own format wrapper would still allow huge paddings).
* **Only the globals we name**: ``range`` (counted, see below).  Jinja's
  ``cycler``, ``joiner``, ``namespace``, ``lipsum`` and ``dict`` are gone, and
  the ``safe`` filter too: customer data in an HTML mail stays escaped (W2)
  whatever a dealer's template says.
* **No other templates.** ``include``, ``import``, ``from`` and ``extends``
  are refused when the template is parsed (:class:`ForbiddenTagError`): a mail
  template cannot read another file, ``/etc/passwd`` or otherwise.
* **Bounded work.** Loops, calls and ``range`` draw on a per-render step
  budget; everything a template prints (also inside ``{% set %}`` blocks,
  macros and ``{% filter %}``) draws on an output budget; ``*``, ``**``,
  ``+``, ``%``, ``~`` and the widening filters (``center``, ``indent``,
  ``join``, ``replace``…) are checked *before* they build a value.  A
  template that loops forever or prints gigabytes ends with
  :class:`TemplateLimitError` instead of taking the worker down.  The
  budgets grow with the context's own text, so a customer's long message
  never trips them.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import (
    BaseLoader,
    StrictUndefined,
    Template,
    TemplateRuntimeError,
    TemplateSyntaxError,
    Undefined,
    nodes,
    pass_context,
    select_autoescape,
)
from jinja2 import filters as jinja_filters
from jinja2.runtime import Context, LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

__all__ = [
    "ForbiddenTagError",
    "MailSandbox",
    "PlainData",
    "SecurityError",
    "TemplateLimitError",
    "TemplateTooLongError",
    "plain_data",
]

MAX_SOURCE = 100_000  # characters in one template file
MAX_STEPS = 200_000  # loop iterations + calls + range() elements in one render
MAX_OUTPUT = 1_000_000  # characters printed in one render, on top of 4x the context's text
MAX_WIDTH = 1_000  # paddings, indents, batch and slice counts
MAX_INT_BITS = 16_384  # results of * and ** on integers (about 5,000 digits)
MAX_DEPTH = 32  # nesting of the context data

FORBIDDEN_TAGS = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from",
    nodes.Extends: "extends",
}
# Methods a template may call, by the type of the object they belong to.  Nothing here
# runs code, reads files or returns anything but data derived from the object.
SAFE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset(
        {
            "capitalize",
            "casefold",
            "count",
            "endswith",
            "find",
            "isalnum",
            "isalpha",
            "isdecimal",
            "isdigit",
            "islower",
            "isnumeric",
            "isspace",
            "istitle",
            "isupper",
            "lower",
            "lstrip",
            "removeprefix",
            "removesuffix",
            "rfind",
            "rsplit",
            "rstrip",
            "split",
            "splitlines",
            "startswith",
            "strip",
            "swapcase",
            "title",
            "upper",
        }
    ),
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    date: frozenset({"isoformat", "strftime", "weekday", "isoweekday"}),
    time_of_day: frozenset({"isoformat", "strftime"}),
    LoopContext: frozenset({"cycle", "changed"}),
}
# Leaf values a template may hold; containers are dict, list and tuple of these.
_LEAVES = (str, int, float, Decimal, date, time_of_day, type(None))
_DATA = (*_LEAVES, dict, list, tuple)
_EXACT_LEAVES = frozenset({*_LEAVES, bool, datetime, Markup})
_METHOD_TYPES = (BuiltinMethodType, MethodType)
# "%5s", "%-*d", "%(name)010.3f": the width and precision of printf-style conversions.
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateLimitError(TemplateRuntimeError):
    """A template went over one of the sandbox's limits (``limit`` names which)."""

    def __init__(self, limit: str, maximum: int) -> None:
        self.limit = limit
        self.maximum = maximum
        super().__init__(f"template exceeds the {limit} limit ({maximum:,})")


class TemplateTooLongError(TemplateSyntaxError):
    """The template's source is longer than :data:`MAX_SOURCE` (refused before parsing)."""

    limit = "source"
    maximum = MAX_SOURCE

    def __init__(self, name: str | None, filename: str | None) -> None:
        super().__init__(
            f"the template is longer than {MAX_SOURCE:,} characters", 1, name, filename
        )


class ForbiddenTagError(TemplateSyntaxError):
    """``include``/``import``/``from``/``extends``: a mail template stands alone."""

    def __init__(self, tag: str, lineno: int, name: str | None, filename: str | None) -> None:
        self.tag = tag
        super().__init__(f"{{% {tag} %}} is not allowed in mail templates", lineno, name, filename)


# --- context data ------------------------------------------------------------------------


def plain_data(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain template data, or TypeError.

    Mappings and dataclasses become dicts, sets become lists, enums their
    value, ``str``/``int`` subclasses (other than :class:`~markupsafe.Markup`)
    the base type.  Anything else — an ORM object, a session, a function —
    is refused: a template must not be handed an object whose methods or
    relationships reach further than the data we meant to show.
    """
    kind = type(value)
    if kind in _EXACT_LEAVES:
        return value
    if _depth > MAX_DEPTH:
        raise TypeError("template data nested too deeply")
    if kind is dict:
        return {_key(k): plain_data(v, _depth + 1) for k, v in value.items()}
    if kind is list:
        return [plain_data(v, _depth + 1) for v in value]
    if isinstance(value, enum.Enum):
        return plain_data(value.value, _depth + 1)
    if isinstance(value, bool):
        return bool(value)
    for base in (str, int, float, Decimal, datetime, date):
        if isinstance(value, base):
            return value if type(value) is base else _rebase(base, value)
    if isinstance(value, Mapping):
        return {_key(k): plain_data(v, _depth + 1) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain_data(getattr(value, f.name), _depth + 1)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [plain_data(v, _depth + 1) for v in items]
    raise TypeError(f"{type(value).__name__} is not template data (use a dict of plain values)")


def _rebase(base: type, value: Any) -> Any:
    if base is datetime:
        return datetime.combine(value.date(), value.timetz())
    if base is date:
        return date(value.year, value.month, value.day)
    return base(value)


class PlainData(dict[str, Any]):
    """A render's context after :func:`plain_data`, with its text size: converted once.

    :func:`mailgate.outbound.compose.render_mail` renders three files from one
    context; converting it once instead of per file keeps the sandbox cheap.
    """

    text_size: int

    @classmethod
    def of(cls, context: Mapping[str, Any]) -> PlainData:
        if isinstance(context, PlainData):
            return context
        data = cls(plain_data(dict(context)))
        data.text_size = text_size(data)
        return data


def _key(key: Any) -> str | int:
    if type(key) in (str, int):
        return key  # type: ignore[no-any-return]
    if isinstance(key, (str, int)) and not isinstance(key, bool):
        return plain_data(key)  # type: ignore[no-any-return]
    raise TypeError(f"{type(key).__name__} is not a template data key")


def text_size(value: Any) -> int:
    """Characters of text in ``value`` (strings in nested containers), about 8 per other leaf."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_size(k) + text_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(text_size(v) for v in value) + len(value)
    return 8


# --- budgets -----------------------------------------------------------------------------


@dataclasses.dataclass
class _Budget:
    """What one render may still spend; see :meth:`MailTemplate.render`."""

    steps: int
    output: int
    value: int  # the largest string or list an operator may build

    def step(self, count: int = 1) -> None:
        self.steps -= count
        if self.steps < 0:
            raise TemplateLimitError("steps", MAX_STEPS)

    def printed(self, count: int) -> None:
        self.output -= count
        if self.output < 0:
            raise TemplateLimitError("output", MAX_OUTPUT)

    def check_value(self, size: int) -> None:
        if size > self.value:
            raise TemplateLimitError("value", self.value)


_BUDGET: ContextVar[_Budget | None] = ContextVar("mailgate_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # compiled template code run outside MailTemplate.render
        raise TemplateLimitError("render", 0)
    return budget


def _width(value: Any) -> int:
    size = len(value) if isinstance(value, str) else value
    if isinstance(size, int) and size > MAX_WIDTH:
        raise TemplateLimitError("width", MAX_WIDTH)
    return size if isinstance(size, int) else 0


def _check_printf(text: Any) -> None:
    """Refuse ``%*s`` and widths/precisions above :data:`MAX_WIDTH` in a format string."""
    if not isinstance(text, str):
        return
    for match in _PRINTF.finditer(text):
        for number in match.groups():
            if number == "*" or (number and int(number) > MAX_WIDTH):
                raise TemplateLimitError("width", MAX_WIDTH)


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple)):
        return len(value) + sum(len(v) for v in value if isinstance(v, (str, list, tuple)))
    return 0


# --- the environment ---------------------------------------------------------------------


@pass_context
def _counted(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    """Every ``{% for %}`` iterates through this (put there by :class:`_Guard`)."""
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


@pass_context
def _printed(context: Context, value: Any) -> Any:
    """Every printed piece passes here (put there by :class:`_Guard`), captured or not."""
    _budget().printed(len(value) if isinstance(value, str) else len(str(value)))
    return value


@pass_context
def _joined(context: Context, pieces: list[Any]) -> str:
    """``a ~ b``: size checked before the string is built."""
    _budget().check_value(sum(len(p) if isinstance(p, str) else 16 for p in pieces))
    join = markup_join if context.eval_ctx.autoescape else str_join
    return join(pieces)  # type: ignore[no-any-return]


def _range(*args: int) -> range:
    numbers = safe_range(*args)
    _budget().step(len(numbers))
    return numbers


class _Guard(NodeTransformer):
    """Rewrites a parsed template: refuse other templates, count loops and output."""

    def __init__(self, name: str | None, filename: str | None) -> None:
        self.name = name
        self.filename = filename
        self.repeated = 0  # inside a loop or macro body, which may run many times

    def _repeating(self, node: nodes.Node) -> nodes.Node:
        self.repeated += 1
        try:
            return self.generic_visit(node)  # type: ignore[no-any-return]
        finally:
            self.repeated -= 1

    visit_Macro = visit_CallBlock = _repeating

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        for kind, tag in FORBIDDEN_TAGS.items():
            if isinstance(node, kind):
                raise ForbiddenTagError(tag, node.lineno, self.name, self.filename)
        return super().generic_visit(node, *args, **kwargs)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self._repeating(node)
        node.iter = _filter(node.iter, "_mailgate_counted")
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        node = self.generic_visit(node)
        node.nodes = [
            child
            if isinstance(child, nodes.TemplateData) and not self.repeated
            else _filter(child, "_mailgate_printed")
            for child in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return _filter(nodes.List(node.nodes, lineno=node.lineno), "_mailgate_joined")


def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class MailTemplate(Template):
    """A template that renders only plain data, within the budgets (see the module doc)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        if len(args) == 1 and not kwargs and isinstance(args[0], PlainData):
            data = args[0]
        else:
            data = PlainData.of(dict(*args, **kwargs))
        allowance = 4 * data.text_size
        budget = _Budget(
            steps=MAX_STEPS, output=MAX_OUTPUT + allowance, value=MAX_OUTPUT + allowance
        )
        token = _BUDGET.set(budget)
        try:
            return super().render(data)
        finally:
            _BUDGET.reset(token)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        yield self.render(*args, **kwargs)


class MailSandbox(ImmutableSandboxedEnvironment):
    """The one Jinja2 environment class for mail: see the module docstring."""

    template_class = MailTemplate
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, loader: BaseLoader) -> None:
        super().__init__(
            loader=loader,
            # W2: anything ending in .html is escaped; a test asserts this stays on.
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            # A typo in a template must fail loudly in tests, not mail an empty field.
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=True,
        )
        self.globals.clear()
        self.globals["range"] = _range
        self.filters.pop("safe", None)
        self.filters.update(_GUARDED_FILTERS)
        self.filters.update(
            {
                "_mailgate_counted": _counted,
                "_mailgate_printed": _printed,
                "_mailgate_joined": _joined,
            }
        )

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        if len(source) > MAX_SOURCE:
            raise TemplateTooLongError(name, filename)
        tree = super()._parse(source, name, filename)
        tree = _Guard(name, filename).visit(tree)
        tree.set_environment(self)
        return tree  # type: ignore[no-any-return]

    # -- what a template may touch --

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or not super().is_safe_attribute(obj, attr, value):
            return False
        if _allowed_method(value):
            return True
        return not callable(value) and isinstance(value, _DATA)

    def is_safe_callable(self, obj: Any) -> bool:
        if isinstance(obj, Undefined):
            return True  # calling it raises its own (Undefined or Security) error
        allowed = isinstance(obj, (Macro, LoopContext)) or obj is _range or _allowed_method(obj)
        return allowed and super().is_safe_callable(obj)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        """Refuse at once, not with an undefined that ``|list`` or ``repr`` would let pass."""
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe."
        )

    def wrap_str_format(self, value: Any) -> None:
        """No ``str.format``/``format_map``: :meth:`is_safe_attribute` refuses them."""
        return None

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _budget().step()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``+``, ``%`` with the result's size checked before it is built."""
        budget = _budget()
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    budget.check_value(_size(seq) * max(count, 0))
            if _is_int(left) and _is_int(right):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise TemplateLimitError("number", MAX_INT_BITS)
        elif operator == "**":
            if _is_int(left) and _is_int(right) and right > 0:
                if max(left.bit_length(), 1) * right > MAX_INT_BITS:
                    raise TemplateLimitError("number", MAX_INT_BITS)
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                budget.check_value(_size(left) + _size(right))
        elif operator == "%":
            _check_printf(left)
        return self.binop_table[operator](left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _allowed_method(value: Any) -> bool:
    """A bound method in :data:`SAFE_METHODS` (by its owner's type and its own name)."""
    if not isinstance(value, _METHOD_TYPES):
        return False
    owner, name = value.__self__, value.__name__
    return any(name in SAFE_METHODS.get(kind, ()) for kind in type(owner).__mro__)


# --- filters that could build a huge value from a small template ----------------------------


def _center(value: Any, width: int = 80) -> str:
    _width(width)
    return jinja_filters.do_center(value, width)


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    _budget().check_value(len(text) + (text.count("\n") + 1) * _width(width))
    return jinja_filters.do_indent(text, width, first, blank)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_printf(value)
    return jinja_filters.do_format(value, *args, **kwargs)


def _slice(eval_ctx: Any, value: Any, slices: int, fill_with: Any = None) -> Any:
    _width(slices)
    return jinja_filters.do_slice(eval_ctx, value, slices, fill_with)  # type: ignore[call-arg]


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    _width(linecount)
    return jinja_filters.do_batch(value, linecount, fill_with)


def _tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Markup:
    if indent is not None:
        _width(indent)
    return jinja_filters.do_tojson(eval_ctx, value, indent)  # type: ignore[call-arg]


def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(value)
    estimate = sum(len(v) if isinstance(v, str) else 16 for v in items)
    _budget().check_value(estimate + len(str(d)) * len(items))
    return jinja_filters.do_join(eval_ctx, items, d, attribute)  # type: ignore[call-arg]


def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old_text, new_text = str(s), str(old), str(new)
    hits = text.count(old_text)
    if count is not None and count >= 0:
        hits = min(hits, count)
    _budget().check_value(len(text) + hits * max(len(new_text) - len(old_text), 0))
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)  # type: ignore[call-arg]


def _wordwrap(
    environment: Any,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    text = str(s)
    extra = len(wrapstring if wrapstring is not None else environment.newline_sequence)
    _budget().check_value(len(text) + (len(text) // max(int(width), 1) + 1) * extra)
    return jinja_filters.do_wordwrap(  # type: ignore[call-arg]
        environment, s, width, break_long_words, wrapstring, break_on_hyphens
    )


def _same_pass(original: Callable[..., Any], guard: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``guard`` the original filter's ``pass_eval_context``/``pass_environment`` mark."""
    mark = getattr(original, "jinja_pass_arg", None)
    if mark is not None:
        guard.jinja_pass_arg = mark  # type: ignore[attr-defined]
    return guard


_GUARDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "format": _format,
    "slice": _same_pass(jinja_filters.do_slice, _slice),
    "batch": _batch,
    "tojson": _same_pass(jinja_filters.do_tojson, _tojson),
    "join": _same_pass(jinja_filters.do_join, _join),
    "replace": _same_pass(jinja_filters.do_replace, _replace),
    "wordwrap": _same_pass(jinja_filters.do_wordwrap, _wordwrap),
}
