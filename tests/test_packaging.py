"""A plain (non-editable) install must ship templates, migrations and web assets."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_package_data(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    [wheel] = tmp_path.glob("mailgate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected_sources = {
        "mailgate/templates/email": ROOT / "templates" / "email",
        # the whole web UI: every subpackage, template, asset and translation catalog
        "mailgate/webui": ROOT / "webui",
        "mailgate/migrations/versions": ROOT / "mailgate" / "migrations" / "versions",
    }
    for prefix, folder in expected_sources.items():
        for path in folder.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert f"{prefix}/{path.relative_to(folder).as_posix()}" in names
    assert "mailgate/migrations/script.py.mako" in names
    assert "mailgate/parsers/generic.py" in names and "mailgate/distribution/policies.py" in names
    assert not any(
        name.startswith(("parsers/", "webui/", "templates/", "tests/")) for name in names
    )
