"""The dealer's mail template overrides as files: list, check, write, reset.

The overrides stay a directory (``dealer.templates_dir``), the place the
renderer already reads and the import already checks: Jinja's file loader
notices a changed file by its mtime, so the worker and ``serve`` pick up a
saved template without a restart and without a second storage.  When the
dealer has no directory yet, ``<data_dir>/templates`` is used and entered in
the settings on the first save.

An edit is checked before it is written: the current overrides plus the
edited files are copied to a scratch directory and run through
:func:`check_overrides` (parse + render against the sample context under
StrictUndefined), the same check as ``mailgate settings import``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from mailgate.outbound.compose import LANGUAGES, RenderedMail, check_overrides, single_line
from mailgate.outbound.samples import sample_context

PARTS = ("subject.txt", "txt", "html")


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    language: str
    overridden: tuple[str, ...]  # which parts the dealer replaced


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
    result = []
    for name in packaged_names():
        for language in LANGUAGES:
            own = tuple(
                part
                for part in PARTS
                if override_dir is not None
                and (override_dir / language / f"{name}.{part}").is_file()
            )
            result.append(TemplateInfo(name, language, own))
    return result


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


@contextmanager
def _candidate(
    override_dir: Path | None, language: str, name: str, sources: Mapping[str, str]
) -> Iterator[Path]:
    """A scratch copy of the overrides with the edited template in place of the old one."""
    with tempfile.TemporaryDirectory(prefix="mailgate-templates-") as scratch:
        root = Path(scratch)
        if override_dir is not None and override_dir.is_dir():
            shutil.copytree(override_dir, root, dirs_exist_ok=True)
        for part in PARTS:
            (root / language / f"{name}.{part}").unlink(missing_ok=True)
        for part, text in _changed(language, name, sources).items():
            target = root / language / f"{name}.{part}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        yield root


def check_and_preview(
    override_dir: Path | None,
    language: str,
    name: str,
    sources: Mapping[str, str],
    dealer_name: str,
) -> tuple[list[str], RenderedMail | None]:
    """The import's problems for the edited template, and its rendering with the sample."""
    from jinja2 import TemplateError

    from mailgate.outbound.compose import _environment  # a fresh, uncached environment

    with _candidate(override_dir, language, name, sources) as root:
        prefix = f"{language}/{name}."
        problems = [p for p in check_overrides(root) if p.startswith(prefix)]
        context = sample_context(name, dealer_name)
        if problems or context is None:
            return problems, None
        env = _environment(root)
        try:
            rendered = RenderedMail(
                single_line(env.get_template(prefix + "subject.txt").render(context), 300),
                env.get_template(prefix + "txt").render(context),
                env.get_template(prefix + "html").render(context),
            )
        except TemplateError as exc:
            return [f"{prefix}: {type(exc).__name__}: {exc}"], None
        return [], rendered


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
