"""Jinja2's error messages, said in the admin's language.

Jinja explains a broken template in English ("unexpected '}'", "Encountered unknown
tag 'foo'."); the template editor is part of the German UI, so quoting that text
would put English in front of a dealer's admin. This module recognises Jinja's
message shapes and says them again through gettext; a message it does not know
becomes a general hint rather than the English original.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _

# Jinja's names for the token kinds it expected or found.
_TOKEN_NAMES: dict[str, Callable[[], str]] = {
    "end of print statement": lambda: _("the closing }}"),
    "end of statement block": lambda: _("the closing %}"),
    "end of template": lambda: _("the end of the template"),
    "name": lambda: _("a name"),
    "integer": lambda: _("a number"),
    "string": lambda: _("a text in quotes"),
}


def _token(raw: str) -> str:
    """A token as the admin knows it: a named kind in words, a character in quotes."""
    named = _TOKEN_NAMES.get(raw)
    return named() if named is not None else f"„{raw}“"


def _missing_tags(match: re.Match[str]) -> str:
    tags = re.findall(r"'(\w+)'", match.group("tags"))
    return _(
        "the template ends before a block is closed (expected %(tags)s)",
        tags=", ".join(f"{{% {tag} %}}" for tag in tags),
    )


_SHAPES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(
            r"^Unexpected end of template\. Jinja was looking for the following tags: "
            r"(?P<tags>.+?)\."
        ),
        _missing_tags,
    ),
    (
        re.compile(r"^Encountered unknown tag '(?P<tag>[^']*)'"),
        lambda m: _(
            "unknown tag {%% %(tag)s %%} (or a closing tag without its opening one)", tag=m["tag"]
        ),
    ),
    (
        re.compile(r"^expected token '(?P<want>[^']*)', got '(?P<got>[^']*)'$"),
        lambda m: _(
            "%(want)s was expected here, not %(got)s", want=_token(m["want"]), got=_token(m["got"])
        ),
    ),
    (
        re.compile(r"^unexpected '(?P<got>[^']*)', expected '(?P<want>[^']*)'$"),
        lambda m: _(
            "%(want)s was expected here, not %(got)s", want=_token(m["want"]), got=_token(m["got"])
        ),
    ),
    (
        re.compile(r"^unexpected '(?P<got>[^']*)'$"),
        lambda m: _("%(got)s is not expected here", got=_token(m["got"])),
    ),
    (
        re.compile(r"^unexpected char (?P<q>['\"])(?P<char>.*)(?P=q) at \d+$"),
        lambda m: _(
            "the character %(char)s is not expected here (an unclosed quote?)",
            char=_token(m["char"]),
        ),
    ),
    (
        re.compile(r"^expected name or number$"),
        lambda m: _("a field name is missing after the dot"),
    ),
    (
        re.compile(r"^Expected an expression, got '(?P<got>[^']*)'$"),
        lambda m: _("a value or variable is missing before %(got)s", got=_token(m["got"])),
    ),
    (
        re.compile(r"^Missing end of comment tag$"),
        lambda m: _("a comment {# is not closed with #}"),
    ),
    (
        re.compile(r"^No filter named '(?P<name>[^']*)'"),
        lambda m: _("there is no filter named %(name)s", name=_token(m["name"])),
    ),
    (
        re.compile(r"^No test named '(?P<name>[^']*)'"),
        lambda m: _("there is no test named %(name)s", name=_token(m["name"])),
    ),
    (
        re.compile(r"^'(?P<name>[^']*)' is undefined$"),
        lambda m: _("%(name)s does not exist", name=_token(m["name"])),
    ),
    (
        re.compile(r"^'(?P<obj>[^']*)' has no attribute '(?P<name>[^']*)'$"),
        lambda m: _(
            "%(name)s is not a field of %(obj)s", name=_token(m["name"]), obj=_token(m["obj"])
        ),
    ),
    (
        re.compile(r"^access to attribute '(?P<name>[^']*)' of '[^']*' object is unsafe\.?$"),
        lambda m: _("the field %(name)s may not be used", name=_token(m["name"])),
    ),
    (re.compile(r"division (or modulo )?by zero"), lambda m: _("a division by zero")),
]


def german_detail(message: str) -> str:
    """Jinja's ``message`` in the UI language; a general hint when its shape is unknown."""
    text = message.strip()
    for pattern, say in _SHAPES:
        match = pattern.search(text)
        if match is not None:
            return say(match)
    return _("check the brackets {{ }}, {% %} and the spelling of the names")
