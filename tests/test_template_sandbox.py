"""Server-side template injection (issue 16, item 2): every mail template renders sandboxed.

The attacker here is whoever can edit a mail template: an admin in the web
editor (preview and save), or a file in the dealer's ``templates_dir``.  Each
known Jinja2 escape must neither run a command (a payload that would create a
marker file must not create it) nor crash the page: the admin gets a German
error naming the file and line.  Runaway templates (endless loops, huge output)
end with an error too, and a broken override never costs a mail at send time.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import logging
import re
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from jinja2.runtime import Context, LoopContext, Macro, Undefined
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import PathSettings, Settings
from mailgate.doctor import WARN, check_templates
from mailgate.outbound import sandbox
from mailgate.outbound.compose import (
    LANGUAGES,
    check_override_problems,
    check_overrides,
    checking_environment,
    environment,
    format_price,
    render_mail,
)
from mailgate.outbound.samples import SAMPLE_CONTEXTS, sample_context
from mailgate.outbound.template_check import allowed_variables, template_data
from mailgate.webui.settings import overrides

from .webui_helpers import ensure_user, logged_in, post, web_app

ADMIN = "admin@autohaus.example"
PAGE = "/settings/templates/de/notification"
PACKAGED = sorted({t.split("/")[1].split(".")[0] for t in environment(None).list_templates()})
# The mark of a template that cannot be used: the editor's problem list.
PROBLEMS = 'id="template-problems"'

# Each payload would create the file MARKER if the template could reach Python.
PAYLOADS = [
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "{{ lipsum.__globals__.__builtins__.__import__('os').popen('touch MARKER').read() }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
    "{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}",
    "{% for c in customer.name.__class__.__mro__[-1].__subclasses__() %}"
    "{% if c.__name__ == 'Popen' %}{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}",
    "{% for c in ().__class__.__bases__[0].__subclasses__() %}{% if 'Popen' in c.__name__ %}"
    "{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}",
    "{{ lead.__class__.__mro__[1].__subclasses__() }}",
    "{{ (lead|attr('__class__')|attr('__mro__'))[1]|attr('__subclasses__') }}",
    "{{ (lead.get|attr('__self__')|attr('__class__')) }}",
    "{{ (cycler|attr('__init__')|attr('__globals__'))['os'].popen('touch MARKER').read() }}",
    "{{ '{0.__init__.__globals__[os].popen}'.format(cycler) }}",
    "{{ '{0.__class__.__mro__}'.format(lead) }}",
    "{{ customer.name.format_map(lead) }}",
    "{{ '%s'|format(cycler.__init__.__globals__.os.popen('touch MARKER').read()) }}",
    "{{ '%s'|format(lead.__class__) }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os"
    ".popen('touch MARKER').read() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config.__class__.__init__.__globals__['os'].popen('touch MARKER').read() }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__.__builtins__.__import__('os')"
    ".popen('touch MARKER').read() }}",
    "{{ url_for.__globals__['os'].popen('touch MARKER').read() }}",
    "{{ get_flashed_messages.__globals__['os'].popen('touch MARKER').read() }}",
    "{{ range.__globals__['os'].popen('touch MARKER').read() }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{% set ns = namespace(x=1) %}{{ ns.__init__.__globals__ }}",
    "{{ lead.get.__globals__ }}",
    "{{ lead.__getitem__('id') }}",
    "{{ [lead]|map(attribute='__class__')|list }}",
    "{{ lead.items()|selectattr('__class__')|list }}",
    "{% macro m() %}{{ caller.__globals__ }}{% endmacro %}{% call m() %}x{% endcall %}",
    "{% macro m() %}{{ m._func.__globals__ }}{% endmacro %}{{ m() }}",
    "{% for x in [1] %}{{ loop.__class__.__init__.__globals__ }}{% endfor %}",
    "{% import os %}",
    "{% import 'os' as os %}{{ os.popen('touch MARKER') }}",
    "{% from '/etc/passwd' import root %}",
    "{% include '/etc/passwd' %}",
    "{% include '../../../../../../etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{% extends 'de/notification.txt' %}",
]
# Templates that would take the server's CPU or memory without the limits.
RUNAWAYS = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
    "{% set x %}{% for i in range(90000) %}{{ customer.name * 50 }}{% endfor %}{% endset %}",
    "{{ 'x' * 1000000000 }}",
    "{{ ['x'] * 1000000000 }}",
    "{% set a = 'x' * 100000 %}{{ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a }}",
    "{{ 'x'|center(1000000000) }}",
    "{{ 'x'|indent(1000000000) }}",
    "{{ '%1000000000s'|format('x') }}",
    "{{ '%*s' % (1000000000, 'x') }}",
    "{{ customer.name|replace('', 'x' * 100000) }}",
    "{{ (2 ** 100000) }}",
    "{{ [1]|batch(1000000000, 0)|list }}",
    "{{ range(1000000000)|list }}",
    "{% macro b(n) %}{{ b(n) }}{{ b(n) }}{% endmacro %}{{ b(1) }}",
    "{% for x in [1, 2] recursive %}{{ loop([1, 2]) }}{% endfor %}",
]


def payload(template: str, marker: Path) -> str:
    return template.replace("MARKER", str(marker))


@pytest.fixture
def editor(dealer: sessionmaker[Session], tmp_path: Path) -> FlaskClient:
    ensure_user(dealer, ADMIN, "admin", name="Ada Admin")
    app: Flask = web_app(dealer, Settings(paths=PathSettings(data_dir=str(tmp_path))))
    return logged_in(app, ADMIN)


def edit(client: FlaskClient, text: str, action: str, part: str = "text") -> str:
    """Submit the editor form (CSRF as a browser would); the page as text, never a 500."""
    form = {
        "subject": "[Lead {{ lead.id }}] Neu",
        "text": "Hallo {{ assignee.name }}",
        "html": "<p>Hallo {{ assignee.name }}</p>",
        "action": action,
    }
    form[part] = text
    started = time.monotonic()
    response = post(client, PAGE, form, page=PAGE)
    assert time.monotonic() - started < 30, "a template check must end quickly"
    page = response.get_data(as_text=True)
    assert response.status_code == 200, (text, response.status_code)
    assert "Traceback" not in page and 'File "' not in page
    return page


# --- through the web editor -----------------------------------------------------------------


@pytest.mark.parametrize("action", ["preview", "save"])
def test_escape_payloads_in_the_web_editor_run_nothing_and_are_refused(
    editor: FlaskClient, tmp_path: Path, action: str
) -> None:
    marker = tmp_path / "pwned"
    for i, template in enumerate(PAYLOADS):
        part = ("text", "html", "subject")[i % 3]
        page = edit(editor, payload(template, marker), action, part)
        assert not marker.exists(), template
        assert PROBLEMS in page, template
        assert "root:x:0" not in page and "uid=" not in page
        assert 'id="preview-text"' not in page  # no preview of a refused template
    assert not (tmp_path / "templates").exists()  # nothing was saved


def test_the_admin_reads_what_is_wrong_in_german(editor: FlaskClient) -> None:
    page = edit(editor, "{{ cycler.__init__.__globals__ }}", "preview")
    assert "de/notification.txt, Zeile 1: Unbekannte Variable cycler." in page
    assert (
        "Diese Vorlage kennt: actions, assignee, customer, dealer_name, lead, "
        "reply_reaches_customer." in page
    )
    page = edit(editor, "Hallo\n{{ lead.__class__ }}", "save")
    assert "de/notification.txt, Zeile 2: Nicht erlaubt" in page
    assert "Nichts wurde gespeichert" in page or "nicht gespeichert" in page
    page = edit(editor, "{% include '/etc/passwd' %}", "preview", "html")
    assert "de/notification.html, Zeile 1: „include“ ist nicht erlaubt" in page
    page = edit(editor, "{% if %}", "preview")
    assert "Das ist kein gültiges Jinja2" in page
    page = edit(editor, "{{ lead.nichts }}", "preview")
    assert "Dieses Feld gibt es in den Beispieldaten nicht" in page


def test_runaway_templates_end_with_a_clear_error(editor: FlaskClient, tmp_path: Path) -> None:
    for template in RUNAWAYS:
        page = edit(editor, template, "preview")
        assert "Die Vorlage tut zu viel" in page, template
    page = edit(editor, "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "save")
    assert "mehr als 1.000.000 Zeichen" in page or "länger als" in page
    page = edit(editor, "x" * 100_001, "save")
    assert "die Vorlage ist länger als 100.000 Zeichen" in page
    assert not (tmp_path / "templates").exists()


def test_a_normal_edit_still_previews_and_saves(editor: FlaskClient, tmp_path: Path) -> None:
    text = "{% for c in customer.name.split() %}{{ loop.index }}:{{ c|upper }} {% endfor %}"
    page = edit(editor, text, "preview")
    assert "1:ERIKA 2:MUSTERFRAU" in page and PROBLEMS not in page
    assert edit(editor, text, "preview", "html").count("ERIKA") >= 1
    response = post(
        editor, PAGE, {"subject": "S", "text": text, "html": "<p>x</p>", "action": "save"}
    )
    assert response.status_code == 302
    assert (tmp_path / "templates" / "de" / "notification.txt").read_text() == text


# --- through the rendering functions --------------------------------------------------------


@pytest.mark.parametrize("template", PAYLOADS)
def test_escape_payloads_in_the_checker_and_at_send_time(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = payload(template, marker)
    problems, preview = overrides.check_and_preview("de", "notification", {"txt": source}, "AH")
    assert problems and preview is None and not marker.exists()
    assert problems[0].kind in {
        "security",
        "unknown_variable",
        "forbidden_tag",
        "syntax",
        "undefined",
    }
    # a file put into the templates_dir by other means: refused by the import's check ...
    folder = tmp_path / "templates"
    (folder / "de").mkdir(parents=True)
    (folder / "de" / "notification.txt").write_text(source)
    assert any(p.startswith("de/notification.txt") for p in check_overrides(folder))
    # ... and at send time it runs nothing either: the packaged text goes out instead
    mail = render_mail("notification", "de", sample_context("notification") or {}, folder)
    assert "Neue Anfrage" in mail.subject and "Erika Musterfrau" in mail.text
    assert not marker.exists()


def test_a_broken_override_falls_back_to_the_packaged_template_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "templates"
    (folder / "de").mkdir(parents=True)
    (folder / "de" / "notification.subject.txt").write_text("Eigen {{ lead.id }}")
    (folder / "de" / "notification.txt").write_text("{{ lead.__class__ }}")  # edited on disk
    (folder / "de" / "notification.html").write_text("{% for i in range(100000) %}{{ 'x' * 99 }}")
    context = sample_context("notification") or {}
    with caplog.at_level(logging.ERROR, logger="mailgate.outbound.compose"):
        mail = render_mail("notification", "de", context, folder)
    assert mail.subject == "Eigen 4711"  # the working override is still used
    assert "Erika Musterfrau" in mail.text and "Erika Musterfrau" in mail.html
    logged = caplog.text
    assert "de/notification.txt" in logged and "SecurityError" in logged
    assert "de/notification.html" in logged and "packaged template is sent" in logged
    broken = {(p.file, p.kind) for p in check_override_problems(folder)}
    assert broken == {("de/notification.txt", "security"), ("de/notification.html", "syntax")}
    listing = {(t.language, t.name): t for t in overrides.listing(folder)}
    assert listing["de", "notification"].broken == ("txt", "html")
    assert listing["en", "notification"].broken == ()
    [check] = check_templates(folder)  # mailgate doctor names the file to fix
    assert check.status == WARN and "de/notification.txt" in check.detail
    assert check_templates(None) == []


def test_the_template_list_marks_a_broken_override(
    dealer: sessionmaker[Session], tmp_path: Path
) -> None:
    from mailgate import db
    from mailgate.dealer_settings import apply_document, export_settings

    ensure_user(dealer, ADMIN, "admin", name="Ada Admin")
    folder = tmp_path / "templates"
    (folder / "de").mkdir(parents=True)
    (folder / "de" / "notification.txt").write_text("Hallo {{ assignee.name }}")
    with db.session_scope(dealer) as session:
        import tomllib

        document = tomllib.loads(export_settings(session))
        document["dealer"]["templates_dir"] = str(folder)
        apply_document(session, document)
    (folder / "de" / "notification.txt").write_text("{{ lead.__class__ }}")  # broken on disk
    client = logged_in(web_app(dealer, Settings(paths=PathSettings(data_dir=str(tmp_path)))), ADMIN)
    listing = client.get("/settings/templates").get_data(as_text=True)
    assert listing.count("fehlerhaft: Es wird die mitgelieferte Fassung verschickt") == 1
    page = client.get(PAGE).get_data(as_text=True)  # the editor shows the problem at once
    assert "de/notification.txt, Zeile 1: Nicht erlaubt" in page


@pytest.mark.parametrize("template", RUNAWAYS)
def test_runaway_templates_stop_at_a_limit(template: str) -> None:
    env = checking_environment({"de/notification.txt": template})
    started = time.monotonic()
    with pytest.raises((sandbox.TemplateLimitError, RecursionError, OverflowError)):
        env.get_template("de/notification.txt").render(sample_context("notification") or {})
    assert time.monotonic() - started < 20


def test_templates_get_plain_data_only() -> None:
    class Customer:  # an ORM object with a session behind it
        name = "Erika"

        def delete(self) -> None:
            raise AssertionError("called from a template")

    env = checking_environment({"de/notification.txt": "{{ customer.name }}"})
    with pytest.raises(TypeError, match="not template data"):
        env.get_template("de/notification.txt").render(customer=Customer())
    assert sandbox.plain_data({"a": ("x", 1), "b": {2, 1}}) == {"a": ["x", 1], "b": [1, 2]}

    @dataclasses.dataclass
    class Person:
        name: str
        role: enum.Enum

    class Role(enum.Enum):
        ADMIN = "admin"

    assert sandbox.plain_data(Person("Ada", Role.ADMIN)) == {"name": "Ada", "role": "admin"}
    # a template sees only its allowlisted variables, whatever the caller passed
    data = template_data("notification", {"lead": {}, "session": object(), "dealer_name": "AH"})
    assert set(data) == {"lead", "dealer_name"}


def test_only_the_allowlisted_globals_and_filters_exist() -> None:
    env = environment(None)
    assert set(env.globals) == {"range"}
    assert "safe" not in env.filters  # customer data in HTML mail stays escaped
    assert isinstance(env, sandbox.MailSandbox)
    assert isinstance(environment(Path("/nonexistent")), sandbox.MailSandbox)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_templates_render_exactly_as_with_plain_jinja(name: str, language: str) -> None:
    """The sandbox changes nothing for the shipped templates (same text, byte for byte)."""
    plain = Environment(
        loader=ChoiceLoader([PackageLoader("mailgate.templates", "email")]),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    plain.filters["price"] = format_price
    context = sample_context(name) or {}
    hostile = {**context, "customer": {k: "<b>{{ x }}</b>" for k in context.get("customer", {})}}
    for data in (context, hostile):
        for part in ("subject.txt", "txt", "html"):
            relative = f"{language}/{name}.{part}"
            expected = plain.get_template(relative).render(data)
            assert environment(None).get_template(relative).render(data) == expected


# --- property: no attribute chain reaches a callable outside the allowlist -------------------

ALLOWED_VARIABLES = sorted({(n, v) for n in SAMPLE_CONTEXTS for v in allowed_variables(n) or ()})
_EXTRA_NAMES = [
    "__class__",
    "__mro__",
    "__base__",
    "__bases__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__init__",
    "__dict__",
    "__self__",
    "__func__",
    "__code__",
    "__closure__",
    "__getattribute__",
    "__reduce_ex__",
    "__module__",
    "_TemplateReference__context",
    "mro",
    "format",
    "format_map",
    "gi_frame",
    "f_globals",
    "func_globals",
    "im_func",
    "environment",
    "_func",
    "caller",
    "eval_ctx",
    "parent",
    "vars",
    "0",
]


def _data_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _data_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _data_keys(v)}
    return set()


ATTRIBUTES = sorted(
    set(_EXTRA_NAMES)
    | {n for kind in (str, dict, list, int, float, tuple) for n in dir(kind)}
    | {k for context in SAMPLE_CONTEXTS.values() for k in _data_keys(context)}
)


def _allowed_callable(value: Any) -> bool:
    if value is sandbox._range or isinstance(value, (Macro, LoopContext)):
        return True
    owner, name = getattr(value, "__self__", None), getattr(value, "__name__", None)
    return owner is not None and any(
        name in sandbox.SAFE_METHODS.get(kind, ()) for kind in type(owner).__mro__
    )


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, (str, int, float, type(None))) and not callable(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    target=st.sampled_from(ALLOWED_VARIABLES),
    chain=st.lists(st.sampled_from(ATTRIBUTES), min_size=1, max_size=6),
    by_item=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_attribute_chains_never_reach_a_callable_outside_the_allowlist(
    target: tuple[str, str], chain: list[str], by_item: list[bool]
) -> None:
    name, variable = target
    data = template_data(name, sample_context(name) or {})
    env = environment(None)
    value: Any = sandbox.plain_data(data)[variable]
    for attribute, item in zip(chain, by_item, strict=False):
        try:
            value = env.getitem(value, attribute) if item else env.getattr(value, attribute)
        except Exception:  # noqa: BLE001 - an undefined/refused step ends the chain
            return
        if isinstance(value, Undefined):
            return
        assert _plain(value) or _allowed_callable(value), (variable, chain, value)
    # the same chain in a template, called: whatever runs must be on the allowlist
    called: list[Any] = []
    real_call = Context.call

    def recording(self: Context, obj: Any, *args: Any, **kwargs: Any) -> Any:
        called.append(obj)
        return real_call(self, obj, *args, **kwargs)

    steps = [
        f"[{attribute!r}]" if item or not attribute.isidentifier() else f".{attribute}"
        for attribute, item in zip(chain, by_item, strict=False)
    ]
    expression = variable + "".join(steps)
    source = f"{{{{ {expression}() }}}}{{{{ {expression} }}}}"
    checker = checking_environment({f"de/{name}.txt": source})
    with mock.patch.object(Context, "call", recording):
        try:
            checker.get_template(f"de/{name}.txt").render(data)
        except Exception:  # noqa: BLE001 - refusing is the expected outcome
            pass
    assert all(_allowed_callable(obj) for obj in called), (source, called)


# Jinja's own English, in the shapes its parser and sandbox word their messages.
JINJA_ENGLISH = re.compile(
    r"\b(unexpected|expected|encountered|unknown tag|looking for|innermost|is undefined|"
    r"has no attribute|unsafe|got|no filter named|no test named|division by zero|missing end)\b",
    re.IGNORECASE,
)
BROKEN = [
    "{{ lead.id }",
    "{% if lead.id %}x",
    "{% for x in actions %}{{ x }}",
    "{{ lead.id lead.id }}",
    "{% frobnicate %}",
    "{{ lead. }}",
    "{% endif %}",
    "{{ 'abc }}",
    "{{ lead.id | nofilter }}",
    "{% if %}{% endif %}",
    "{{ lead.id(} }}",
    "{{ ~ }}",
    "{{ lead.id |}}",
    "{{ lead.id is nosuchtest }}",
    "{{ 1 // 0 }}",
    "{{ lead.id }} {# offen",
    "{{ lead.__class__ }}",
    "{{ lead.nichts.mehr }}",
]


@pytest.mark.parametrize("template", BROKEN)
def test_jinja_errors_reach_the_admin_in_german_only(editor: FlaskClient, template: str) -> None:
    """The problem list is German: Jinja's English message is said again, never quoted."""
    page = edit(editor, template, "preview")
    problems = re.search(r'id="template-problems">(.*?)</ul>', page, re.DOTALL)
    assert problems is not None, template
    text = html.unescape(re.sub(r"<[^>]+>", " ", problems.group(1)))
    assert "Zeile" in text or "notification" in text, text
    assert not JINJA_ENGLISH.search(text), text
