"""The pinned, hashed dependency sets (requirements/*.lock) agree with pyproject.toml.

Why: the locks are the supply-chain control of SECURITY.md — CI installs exactly these
files with pip's hash checking — and an unpinned set once turned CI red overnight
(pytest 9.2 with schemathesis 4.32).  pyproject.toml keeps open ranges for users; the
locks must satisfy them, the runtime lock must be the test lock's subset (the versions
the suite ran on), and under CI the environment must be the locked one.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"
# What update.sh resolves for: CI's machine (CPython 3.11, Linux).
TARGET = {**default_environment(), "python_version": "3.11", "sys_platform": "linux"}
ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^ ;\\]+)(?P<rest>.*)$")


def read_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes) of one lock file in pip's requirements format."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if match := ENTRY.match(line):
            current = canonicalize_name(match["name"])
            entries[current] = (match["version"], [])
        elif stripped.startswith("--hash=") and current is not None:
            entries[current][1].append(stripped.removeprefix("--hash=").rstrip(" \\"))
        elif stripped and not stripped.startswith("#"):
            pytest.fail(f"{path.name}: unexpected line {line!r} (options or unpinned entries)")
    return entries


def declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return [Requirement(text) for text in wanted]


@pytest.mark.parametrize("lock_name", ["runtime.lock", "test.lock"])
def test_every_entry_is_pinned_with_sha256_hashes(lock_name: str) -> None:
    entries = read_lock(LOCKS / lock_name)
    assert len(entries) > 20
    for name, (version, hashes) in entries.items():
        assert hashes, f"{lock_name}: {name}=={version} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", item) for item in hashes), name


@pytest.mark.parametrize(
    ("lock_name", "extras"),
    [("runtime.lock", ("postgres",)), ("test.lock", ("postgres", "test"))],
)
def test_lock_satisfies_every_range_in_pyproject(lock_name: str, extras: tuple[str, ...]) -> None:
    entries = read_lock(LOCKS / lock_name)
    for requirement in declared(*extras):
        if requirement.marker and not requirement.marker.evaluate(TARGET):
            continue
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{lock_name} lacks {requirement}"
        version = entries[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock_name} pins {name}=={version}, pyproject asks {requirement}"
        )


def test_runtime_lock_is_the_test_locks_subset() -> None:
    runtime, test = read_lock(LOCKS / "runtime.lock"), read_lock(LOCKS / "test.lock")
    differing = {
        name: (version, test.get(name, ("missing",))[0])
        for name, (version, _) in runtime.items()
        if test.get(name, ("",))[0] != version
    }
    assert not differing, f"runtime.lock pins versions the suite did not run on: {differing}"


def test_the_installer_lock_pins_the_same_pip_as_the_test_lock() -> None:
    """pip older than 24 refuses test.lock (an extra counts as unpinned in hash mode)."""
    installer, test = read_lock(LOCKS / "pip.lock"), read_lock(LOCKS / "test.lock")
    assert list(installer) == ["pip"]
    assert installer["pip"] == test["pip"]
    assert Version(installer["pip"][0]) >= Version("24")


def test_the_build_backend_is_pinned_for_the_no_isolation_install() -> None:
    entries = read_lock(LOCKS / "test.lock")
    assert {"setuptools", "wheel"} <= entries.keys()


def test_ci_and_readme_install_from_the_lock() -> None:
    command = (
        "pip install -r requirements/pip.lock && pip install -r requirements/test.lock"
        " && pip install --no-deps --no-build-isolation -e ."
    )
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert (
        "pip install -q -r requirements/pip.lock && pip install -q -r requirements/test.lock" in ci
    )
    assert "--no-deps --no-build-isolation -e ." in ci


@pytest.mark.skipif(
    os.environ.get("CI") != "true",
    reason="a developer's environment may run other versions; CI must run the locked ones",
)
def test_ci_runs_on_the_locked_versions() -> None:
    mismatched = {}
    for name, (version, _) in read_lock(LOCKS / "test.lock").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed == "missing" or Version(installed) != Version(version):
            mismatched[name] = (version, installed)
    assert not mismatched, f"locked vs installed: {mismatched}"
