"""Mail templates: the dealer's edits are seen within a second, without a look at the disk per mail.

Why: Jinja's ``auto_reload`` asked the file system on every render (issue 18: a
sixth of the sender's CPU while draining a backlog); the loader now checks a
template at most once per ``check_every`` seconds, and then compares both the
dealer's directory and the package.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from mailgate.outbound import template_loader
from mailgate.outbound.compose import _sandbox
from mailgate.outbound.template_loader import OverridesFirstLoader

NAME = "de/notification.subject.txt"
CONTEXT = {"customer": {"name": "Erika Musterfrau"}, "lead": {"id": 7, "vehicle": None}}


def _subject(env) -> str:  # type: ignore[no-untyped-def]
    return env.get_template(NAME).render(CONTEXT).strip()


def _write(folder: Path, text: str, age: float = 0.0) -> None:
    path = folder / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def test_overrides_win_and_edits_are_seen_after_the_interval(tmp_path: Path) -> None:
    env = _sandbox(OverridesFirstLoader(tmp_path, check_every=0.2))
    packaged = _subject(env)
    assert packaged  # the package's subject, no override yet
    _write(tmp_path, "Eigene Zeile {{ customer.name }}")
    # within the interval the cached template stays (no file system check) ...
    assert _subject(env) == packaged
    time.sleep(0.25)
    # ... after it, a file added to the dealer's directory is used
    assert _subject(env) == "Eigene Zeile Erika Musterfrau"
    _write(tmp_path, "Geändert {{ customer.name }}", age=-5)  # a later modification time
    time.sleep(0.25)
    assert _subject(env) == "Geändert Erika Musterfrau"
    shutil.rmtree(tmp_path / "de")
    time.sleep(0.25)
    assert _subject(env) == packaged  # removed: the package again


def test_no_file_system_access_between_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _sandbox(OverridesFirstLoader(tmp_path, check_every=60))
    _subject(env)
    looked: list[object] = []
    real_stat = os.stat
    monkeypatch.setattr(
        template_loader.os, "stat", lambda *a, **k: looked.append(a) or real_stat(*a, **k)
    )
    for _ in range(50):
        _subject(env)
    assert looked == []


def test_a_missing_template_is_still_missing(tmp_path: Path) -> None:
    from jinja2 import TemplateNotFound

    env = _sandbox(OverridesFirstLoader(tmp_path))
    with pytest.raises(TemplateNotFound):
        env.get_template("de/nichts.txt")
    with pytest.raises(TemplateNotFound):
        env.get_template("../../etc/passwd")  # no way out of either place


def test_listing_is_both_places(tmp_path: Path) -> None:
    _write(tmp_path, "x")
    (tmp_path / "de" / "eigene.txt").write_text("y", encoding="utf-8")
    names = OverridesFirstLoader(tmp_path).list_templates()
    assert "de/eigene.txt" in names and "en/notification.txt" in names
    assert names.count(NAME) == 1
