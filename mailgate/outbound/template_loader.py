"""Where mail templates come from: the dealer's directory first, then the package.

Why a loader of its own instead of Jinja's ``ChoiceLoader`` with ``auto_reload``:

* Jinja asks a cached template whether it is up to date on *every* render, and
  the packaged loaders answer with a ``stat`` of the file: a notification
  renders three templates, so the sender looked at the disk several times per
  mail while draining a backlog (issue 18: a sixth of its CPU).  Here a
  template is checked at most once per :data:`CHECK_EVERY` seconds.
* "Up to date" compares what *both* places hold for the name, so a file
  added to, changed in or removed from the dealer's directory is seen as
  well as a package upgraded in place.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from jinja2 import BaseLoader, Environment, FileSystemLoader, PackageLoader, TemplateNotFound
from jinja2.loaders import split_template_path

CHECK_EVERY = 1.0  # seconds: an edit in the web UI reaches the next mail after at most this

Stamp = tuple[int | None, int | None]


def _mtime(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class OverridesFirstLoader(BaseLoader):
    """The dealer's override directory (if any) over the packaged templates."""

    def __init__(self, override_dir: Path | None, check_every: float = CHECK_EVERY) -> None:
        self._package = PackageLoader("mailgate.templates", "email")
        self._override_dir = override_dir
        self._override = FileSystemLoader(str(override_dir)) if override_dir is not None else None
        self._check_every = check_every
        self._package_files: dict[str, Path | None] = {}

    def _stamp(self, environment: Environment, name: str) -> Stamp:
        """Both places' modification times for ``name`` (None: not there)."""
        override = None
        if self._override_dir is not None:
            override = self._override_dir.joinpath(*split_template_path(name))
        return _mtime(override), _mtime(self._package_file(environment, name))

    def _package_file(self, environment: Environment, name: str) -> Path | None:
        """Where the package keeps ``name``: looked up (the file read) once per name."""
        if name not in self._package_files:
            try:
                _, filename, _ = self._package.get_source(environment, name)
            except TemplateNotFound:
                filename = None
            self._package_files[name] = Path(filename) if filename else None
        return self._package_files[name]

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        stamp = self._stamp(environment, template)
        source = filename = None
        if self._override is not None:
            try:
                source, filename, _ = self._override.get_source(environment, template)
            except TemplateNotFound:
                pass
        if source is None:
            source, filename, _ = self._package.get_source(environment, template)
        checked_at = time.monotonic()

        def up_to_date() -> bool:
            nonlocal checked_at
            now = time.monotonic()
            if now - checked_at < self._check_every:
                return True
            checked_at = now
            return self._stamp(environment, template) == stamp

        return source, filename, up_to_date

    def list_templates(self) -> list[str]:
        names = set(self._package.list_templates())
        if self._override is not None:
            names.update(self._override.list_templates())
        return sorted(names)
