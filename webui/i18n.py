"""German and English for the web UI (Flask-Babel), German by default.

Each area of the UI keeps its own catalog under ``translations/<area>/``
(msgids in English, a German ``messages.po`` and its compiled ``.mo``), so
areas are translated independently; Flask-Babel merges all of them.

An area's strings are found by convention: the Python modules
``webui/<area>.py`` or ``webui/<area>/``, and the templates under
``webui/templates/<area>/``; the area ``core`` holds the top-level modules and
templates (frame, errors, login).  ``python -m mailgate.webui.i18n update``
extracts, merges new msgids into every ``.po`` and compiles the ``.mo`` files;
the test suite fails when a msgid is untranslated or a ``.mo`` is stale.
"""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from flask import Flask, g, session
from flask_babel import Babel, get_locale
from flask_login import current_user

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
HERE = Path(__file__).resolve().parent
TRANSLATIONS = HERE / "translations"
TEMPLATES = HERE / "templates"
DATETIME_PATTERNS = {"de": "dd.MM.yyyy HH:mm", "en": "d MMM yyyy, HH:mm"}
DATE_PATTERNS = {"de": "dd.MM.yyyy", "en": "d MMM yyyy"}
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "N_": None}
JINJA_OPTIONS = {"extensions": "jinja2.ext.do", "trimmed": "true"}


def select_language() -> str:
    """The user's own language; before login the one picked on the login page; else German."""
    if getattr(current_user, "is_authenticated", False) and current_user.language in LANGUAGES:
        return str(current_user.language)
    chosen = session.get("language")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def _select_timezone() -> str:
    from .context import dealer

    return dealer().timezone.key


def init_app(app: Flask) -> None:
    dirs = sorted(str(p) for p in TRANSLATIONS.iterdir() if p.is_dir())
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(dirs)
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LANGUAGE
    Babel(app, locale_selector=select_language, timezone_selector=_select_timezone)
    app.jinja_env.filters.update(local=local_time, local_date=local_date)
    app.jinja_env.globals.update(current_language=lambda: str(get_locale() or "de"))


def _tz():  # type: ignore[no-untyped-def]
    if "tz" not in g:
        from .context import dealer

        g.tz = dealer().timezone
    return g.tz


def local_time(value: datetime | None) -> str:
    """A stored UTC time in the dealer's time zone and the user's language."""
    if value is None:
        return "–"
    language = str(get_locale() or DEFAULT_LANGUAGE)
    return format_datetime(
        value,
        DATETIME_PATTERNS.get(language, DATETIME_PATTERNS["de"]),
        tzinfo=_tz(),
        locale=language,
    )


def local_date(value: datetime | date | None) -> str:
    """A day in the user's language; a stored UTC time first moved to the dealer's zone,
    a plain date (a birthday) taken as it is."""
    if value is None:
        return "–"
    language = str(get_locale() or DEFAULT_LANGUAGE)
    if not isinstance(value, datetime):
        return format_date(value, DATE_PATTERNS.get(language, DATE_PATTERNS["de"]), locale=language)
    return format_datetime(
        value, DATE_PATTERNS.get(language, DATE_PATTERNS["de"]), tzinfo=_tz(), locale=language
    )


# --- catalog maintenance (developer tooling, used by the tests too) -------------------------


def areas() -> list[str]:
    return sorted(p.name for p in TRANSLATIONS.iterdir() if p.is_dir())


def _core_module(name: str) -> Path:
    """A module of the core package whose msgids an area translates (marked with ``N_``)."""
    module = importlib.import_module(f"mailgate.{name}")
    return Path(str(module.__file__))


# Core modules worded in English whose words the web UI shows: the protocol phrases.
CORE_SOURCES = {
    "lead": ("protocol", "escalation.phrases"),
    "settings": ("dealer_settings",),
    "customers": ("distribution.customer_file",),
}


def area_sources(area: str) -> Iterator[tuple[Path, str]]:
    """(file, extraction method) of every source file belonging to ``area``."""
    for name in CORE_SOURCES.get(area, ()):
        yield _core_module(name), "python"
    if area == "core":
        others = set(areas()) - {"core"}
        python = [p for p in sorted(HERE.glob("*.py")) if p.stem not in others]
        python += sorted((HERE / "accounts").rglob("*.py"))
        templates = sorted(TEMPLATES.glob("*.html"))
    else:
        python = [HERE / f"{area}.py", *sorted((HERE / area).rglob("*.py"))]
        templates = sorted((TEMPLATES / area).rglob("*.html"))
    for path in python:
        if path.is_file():
            yield path, "python"
    for path in templates:
        yield path, "jinja2"


def extract(area: str) -> Catalog:
    catalog = Catalog(locale=None, project="mailgate", charset="utf-8")
    for path, method in area_sources(area):
        method_fn = "jinja2.ext:babel_extract" if method == "jinja2" else "python"
        options = JINJA_OPTIONS if method == "jinja2" else {}
        for lineno, message, comments, context in extract_from_file(
            method_fn, str(path), keywords=KEYWORDS, options=options
        ):
            catalog.add(
                message,
                None,
                [(_reference(path), lineno)],
                auto_comments=comments,
                context=context,
            )
    return catalog


def _reference(path: Path) -> str:
    """Where a msgid comes from, relative to the web UI (core modules as ``mailgate/…``)."""
    if path.is_relative_to(HERE):
        return str(path.relative_to(HERE))
    return f"mailgate/{path.name}"


def po_path(area: str, language: str = "de") -> Path:
    return TRANSLATIONS / area / language / "LC_MESSAGES" / "messages.po"


def read_catalog(area: str, language: str = "de") -> Catalog:
    path = po_path(area, language)
    if not path.exists():
        return Catalog(locale=language, project="mailgate")
    with path.open("rb") as f:
        return read_po(f, locale=language)


def compiled(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def update(area: str, language: str = "de") -> list[str]:
    """Merge extracted msgids into the area's catalog, write .po and .mo; return untranslated."""
    template = extract(area)
    catalog = read_catalog(area, language)
    catalog.update(template, no_fuzzy_matching=True)
    path = po_path(area, language)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=100, omit_header=False, ignore_obsolete=True)
    path.with_suffix(".mo").write_bytes(compiled(catalog))
    return [str(m.id) for m in catalog if m.id and not m.string]


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "update":
        print("usage: python -m mailgate.webui.i18n update [AREA...]", file=sys.stderr)
        return 2
    missing_any = False
    for area in argv[1:] or areas():
        for msgid in update(area):
            missing_any = True
            print(f"{area}: untranslated: {msgid!r}")
    return 1 if missing_any else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


def translate(area: str, translations: dict[str, str], language: str = "de") -> list[str]:
    """Fill in translations (developer tooling), rewrite .po and .mo; return what is missing."""
    update(area, language)
    catalog = read_catalog(area, language)
    for msgid, text in translations.items():
        if msgid in catalog:
            catalog[msgid].string = text
    path = po_path(area, language)
    with path.open("wb") as f:
        write_po(f, catalog, width=100, ignore_obsolete=True)
    path.with_suffix(".mo").write_bytes(compiled(catalog))
    return [str(m.id) for m in catalog if m.id and not m.string]
