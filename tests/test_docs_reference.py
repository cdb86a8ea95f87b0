"""The docs site: generated references are current, every key is documented once, links hold.

Why: the README once sent readers to a file outside the repository for the settings
format, and described relay defaults the code did not use.  The reference pages
are now generated from the code (mailgate.docs_gen); these tests fail when a page
is stale, when a settings key has no description, and when the site or the
README links to something that does not exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from mailgate import config, dealer_settings, docs_gen

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"


def test_generated_reference_pages_are_current() -> None:
    stale = docs_gen.stale_pages()
    assert stale == [], f"stale: {stale}; run: python -m mailgate.docs_gen"


def test_a_changed_schema_makes_a_page_stale(tmp_path: Path) -> None:
    """The check really compares: a page that differs from the code is reported."""
    docs_gen.write_pages(tmp_path)
    assert docs_gen.stale_pages(tmp_path) == []
    page = tmp_path / "dealer-settings.md"
    page.write_text(page.read_text().replace('"Europe/Berlin"', '"Europe/Vienna"'))
    (tmp_path / "cli.md").unlink()
    assert docs_gen.stale_pages(tmp_path) == ["dealer-settings.md", "cli.md"]
    result = subprocess.run(
        [sys.executable, "-m", "mailgate.docs_gen", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


def _rows(page: str) -> dict[str, dict[str, str]]:
    """``## heading`` -> key -> meaning, from a generated reference page."""
    found: dict[str, dict[str, str]] = {}
    heading = ""
    for line in page.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            found[heading] = {}
        elif line.startswith("| `") and heading:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            for key in re.findall(r"`([^`]+)`", cells[0]):
                assert key not in found[heading], f"{heading} {key} documented twice"
                found[heading][key] = cells[-1]
    return found


def test_every_process_setting_is_documented_once_with_a_meaning() -> None:
    rows = _rows((REFERENCE / "config.md").read_text(encoding="utf-8"))
    for section, cls in config._SECTION_CLASSES.items():
        documented = rows[f"[{section}]"]
        assert list(documented) == [f.name for f in fields(cls)], section
        for key, meaning in documented.items():
            assert len(meaning) > 10, f"[{section}] {key} has no description in mailgate/config.py"


def test_every_dealer_setting_is_documented_once_with_a_meaning() -> None:
    rows = _rows((REFERENCE / "dealer-settings.md").read_text(encoding="utf-8"))
    expected = {f"[{section}]": keys for section, keys in dealer_settings.SCHEMA.items()}
    expected |= {
        "[[users]]": dealer_settings.USER_KEYS,
        "users.sent_folder": dealer_settings.SENT_FOLDER_KEYS,
        "[[groups]]": dealer_settings.GROUP_KEYS,
        "[[imap]]": dealer_settings.IMAP_KEYS,
        "[[completion_reasons]]": dealer_settings.REASON_KEYS,
        "[[feedback]]": dealer_settings.FEEDBACK_KEYS,
        "[[categories]]": dealer_settings.CATEGORY_KEYS,
    }
    assert set(rows) == set(expected)
    for heading, keys in expected.items():
        assert list(rows[heading]) == list(keys), heading
        for key, meaning in rows[heading].items():
            assert len(meaning) > 10, f"{heading} {key}: no comment in mailgate/dealer_settings.py"


def test_every_command_is_in_the_cli_reference() -> None:
    page = (REFERENCE / "cli.md").read_text(encoding="utf-8")
    for command in (
        "serve",
        "settings import",
        "settings export",
        "users create-admin",
        "doctor",
        "backup",
        "timeline",
        "info",
    ):
        assert f"## `mailgate {command}`" in page or f"### `mailgate {command}`" in page
    assert "--allow-empty-addresses" in page and "--dry-run" in page


def test_every_api_operation_and_webhook_event_is_in_the_api_reference() -> None:
    from mailgate.webhooks.emit import EVENTS
    from mailgate.webui.api.openapi import document

    page = (REFERENCE / "api.md").read_text(encoding="utf-8")
    doc = document(())
    for path, operations in doc["paths"].items():
        for method in operations:
            assert f"## `{method.upper()} /api/v1{path}`" in page
    for name in doc["components"]["schemas"]:
        assert f"### {name}" in page
    for event in EVENTS:
        assert f"`{event}`" in page


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """``mkdocs build --strict``: a broken link, anchor or include fails (as in .ci/run)."""
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    security = (site / "security" / "index.html").read_text(encoding="utf-8")
    for heading in re.findall(r"^## (.+)$", (ROOT / "SECURITY.md").read_text(), re.M):
        assert heading.split("`")[0].strip() in security, heading
    assert not list(site.rglob("*.md")), "a page was copied instead of rendered"


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"])
def test_links_in_the_top_level_files_point_at_files_that_exist(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    targets = [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    for target in targets:
        path = target.split("#", 1)[0]
        if path:
            assert (ROOT / path).exists(), f"{name} links to {target}, which does not exist"


def test_readme_is_the_front_door() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "SECURITY.md" in text and "docs/" in text
    assert "../shared/" not in text  # nothing outside the repository


_TOML_BLOCK = re.compile(r"^( *)```toml\n(.*?)^\1```", re.S | re.M)


# (README sends a newcomer through the browser; the documents are in the docs)
@pytest.mark.parametrize("name", ["docs/first-installation.md", "docs/dealer-settings.md"])
def test_the_settings_examples_are_valid_settings_documents(name: str) -> None:
    """A dealer's IT person copies these files: each must pass the import's validation."""
    import tomllib

    text = (ROOT / name).read_text(encoding="utf-8")
    documents = []
    for indent, block in _TOML_BLOCK.findall(text):
        block = "\n".join(line[len(indent) :] for line in block.splitlines())
        if "[dealer]" in block:
            documents.append(tomllib.loads(block))
    assert documents, f"{name} shows no settings document"
    for document in documents:
        clean = dealer_settings.validate(document)
        assert clean["dealer"]["addresses"] and clean["dealer"]["base_url"].startswith("https://")
        assert any(user["role"] == "admin" for user in clean["users"])
