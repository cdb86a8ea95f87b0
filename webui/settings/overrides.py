"""The dealer's mail template overrides as files: list, check, write, reset.

The overrides stay a directory (``dealer.templates_dir``), the place the
renderer already reads and the import already checks: Jinja's file loader
notices a changed file by its mtime, so the worker and ``serve`` pick up a
saved template without a restart and without a second storage.  When the
dealer has no directory yet, ``<data_dir>/templates`` is used and entered in
the settings on the first save.

An edit is checked before it is written, in the same sandbox the mails are
rendered in (:mod:`mailgate.outbound.sandbox`): parse, only the template's own
variables, render against the sample context under StrictUndefined — the
check ``mailgate settings import`` runs, given the edited text instead of files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from mailgate.outbound.compose import (
    LANGUAGES,
    RenderedMail,
    check_override_problems,
    checking_environment,
    single_line,
)
from mailgate.outbound.samples import sample_context
from mailgate.outbound.template_check import (
    TemplateProblem,
    check_template,
    problem_from,
    template_data,
)

PARTS = ("subject.txt", "txt", "html")


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    language: str
    overridden: tuple[str, ...]  # which parts the dealer replaced
    broken: tuple[str, ...] = ()  # which of those fail the check (the packaged part is sent)


def packaged_root() -> Path:
    return Path(str(files("mailgate.templates") / "email"))


def packaged_names() -> list[str]:
    """Template names that exist with all three parts in the package (German)."""
    names = {p.name.split(".")[0] for p in (packaged_root() / "de").iterdir() if p.is_file()}
    return sorted(
        n for n in names if all((packaged_root() / "de" / f"{n}.{x}").is_file() for x in PARTS)
    )


def is_template(language: str, name: str) -> bool:
    return language in LANGUAGES and name in packaged_names()


def listing(override_dir: Path | None) -> list[TemplateInfo]:
    """Every packaged template per language, with the parts the dealer replaced or broke."""
    broken = {problem.file for problem in _problems(override_dir)}
    result = []
    for name in packaged_names():
        for language in LANGUAGES:
            own = tuple(
                part
                for part in PARTS
                if override_dir is not None
                and (override_dir / language / f"{name}.{part}").is_file()
            )
            bad = tuple(p for p in own if f"{language}/{name}.{p}" in broken)
            result.append(TemplateInfo(name, language, own, bad))
    return result


def _problems(override_dir: Path | None) -> list[TemplateProblem]:
    """The directory's problems; an unreadable directory is no reason for a 500 here."""
    if override_dir is None or not override_dir.is_dir():
        return []
    try:
        return check_override_problems(override_dir)
    except OSError:
        return []


def current_sources(override_dir: Path | None, language: str, name: str) -> dict[str, str]:
    """The text of each part as it is used now: the override where there is one."""
    sources = {}
    for part in PARTS:
        own = override_dir / language / f"{name}.{part}" if override_dir else None
        path = (
            own
            if own is not None and own.is_file()
            else packaged_root() / language / f"{name}.{part}"
        )
        sources[part] = path.read_text(encoding="utf-8")
    return sources


def _changed(language: str, name: str, sources: Mapping[str, str]) -> dict[str, str]:
    """Only parts that differ from the package become overrides (the rest keeps updates)."""
    result = {}
    for part, text in sources.items():
        packaged = (packaged_root() / language / f"{name}.{part}").read_text(encoding="utf-8")
        text = text.replace("\r\n", "\n")
        if text.rstrip("\n") != packaged.rstrip("\n"):  # a trailing newline is no change
            result[part] = text
    return result


def check_and_preview(
    language: str, name: str, sources: Mapping[str, str], dealer_name: str
) -> tuple[list[TemplateProblem], RenderedMail | None]:
    """The problems of the edited template, and its rendering with the sample data.

    Nothing is written: the edited parts are checked and rendered from memory
    in the mail sandbox.  Any failure — syntax, a refused attribute, a
    variable the template does not have, too much output — comes back as a
    :class:`TemplateProblem` for the editor to show, never as an exception.
    """
    prefix = f"{language}/{name}."
    edited = {prefix + part: text.replace("\r\n", "\n") for part, text in sources.items()}
    env = checking_environment(edited)
    context = sample_context(name, dealer_name)
    problems = [p for relative in edited for p in check_template(env, relative, name, context)]
    if problems or context is None:
        return problems, None
    data = template_data(name, context)
    parts = {}
    for part in PARTS:
        try:
            parts[part] = env.get_template(prefix + part).render(data)
        except Exception as exc:  # noqa: BLE001 - shown to the admin, not raised
            return [problem_from(prefix + part, exc)], None
    return [], RenderedMail(single_line(parts["subject.txt"], 300), parts["txt"], parts["html"])


def write(override_dir: Path, language: str, name: str, sources: Mapping[str, str]) -> None:
    """Store the edited parts (each file replaced atomically); unchanged parts are removed."""
    changed = _changed(language, name, sources)
    folder = override_dir / language
    folder.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        target = folder / f"{name}.{part}"
        if part in changed:
            scratch = target.with_suffix(target.suffix + ".new")
            scratch.write_text(changed[part], encoding="utf-8")
            os.replace(scratch, target)
        else:
            target.unlink(missing_ok=True)


def reset(override_dir: Path, language: str, name: str) -> None:
    for part in PARTS:
        (override_dir / language / f"{name}.{part}").unlink(missing_ok=True)
