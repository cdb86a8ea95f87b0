"""The parser registry against the golden fixtures in ``tests/fixtures/mails/``.

Layout: ``tests/fixtures/mails/<parser NAME>/<case>.eml`` with an optional
``<case>.json`` beside it.  The JSON holds the *expected subset* of the
``mailgate parse --json`` object (nested objects compare key by key, so a
fixture states exactly the fields it is about; a key given as ``null`` must be
null), plus optional checks:

- ``"message_contains"`` / ``"message_excludes"``: substrings of the message
  (boilerplate, banners and quoted forwards must be gone);
- ``"warnings_contain"``: substrings expected among the warnings;
- ``"context"``: ``{"dealer_addresses": [...], "region": "AT",
  "trusted_authserv_ids": [...]}`` instead of the default dealer below.

Folders that are not parser names hold mails every parser must leave alone
(``nonlead/``: bounces, auto-replies, look-alikes).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

import pytest

from mailgate import parsers
from mailgate.parsers import ParseContext, parse_raw
from mailgate.parsers.forward import unwrap_forward
from mailgate.parsers.message import load
from mailgate.parsers.registry import PARSERS, SPECIFIC

FIXTURES = Path(__file__).parent / "fixtures" / "mails"
NON_PARSER_FOLDERS = {"nonlead", "bounces", "unseen"}  # bounces: tests/test_relay_bounces.py
# unseen/<group>/: graded by tests/test_parse_unseen.py, one level deeper than */*.eml
DEALER = ParseContext(
    dealer_addresses=frozenset(
        {"leads@autohaus-beispiel.example", "verkauf@autohaus-beispiel.example"}
    ),
    region="DE",
)
EXTRA_KEYS = ("message_contains", "message_excludes", "warnings_contain", "context")

ALL_EML = sorted(FIXTURES.glob("*/*.eml"))
GOLDEN = [p for p in ALL_EML if p.with_suffix(".json").exists()]


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_every_parser_module_is_registered() -> None:
    names = {m.NAME for m in PARSERS}
    for info in pkgutil.iter_modules(parsers.__path__):
        module = importlib.import_module(f"mailgate.parsers.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "matches"):
            assert module.NAME in names, f"parsers/{info.name}.py is not in PARSERS"
    assert PARSERS[-1].NAME == "generic", "the generic fallback must come last"
    assert len(names) == len(PARSERS), "parser NAMEs must be unique"


def test_every_registered_parser_has_fixtures() -> None:
    for module in PARSERS:
        folder = FIXTURES / module.NAME
        assert list(folder.glob("*.eml")), f"no fixtures in {folder}"


def test_every_fixture_folder_is_a_parser_or_declared() -> None:
    names = {m.NAME for m in PARSERS} | NON_PARSER_FOLDERS
    for folder in FIXTURES.iterdir():
        if folder.is_dir():
            assert folder.name in names, f"{folder} names no parser"


def test_there_are_enough_golden_pairs() -> None:
    assert len(GOLDEN) >= 70, f"only {len(GOLDEN)} golden fixture pairs"


@pytest.mark.parametrize("path", ALL_EML, ids=_id)
def test_fixture_is_matched_by_its_own_parser_only(path: Path) -> None:
    # a forwarded lead is matched as parse_view sees it: the quoted original
    view = unwrap_forward(load(path.read_bytes()), DEALER)
    matching = [m.NAME for m in SPECIFIC if m.matches(view)]
    folder = path.parent.name
    if folder == "generic" or folder in NON_PARSER_FOLDERS:
        assert matching == [], f"{_id(path)} is claimed by {matching}"
    else:
        assert matching == [folder], f"{_id(path)} is matched by {matching}"


def _context(spec: dict[str, Any] | None) -> ParseContext:
    if not spec:
        return DEALER
    return ParseContext(
        dealer_addresses=frozenset(a.lower() for a in spec.get("dealer_addresses", [])),
        region=spec.get("region", "DE"),
        trusted_authserv_ids=frozenset(spec.get("trusted_authserv_ids", [])),
    )


def _assert_subset(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            _assert_subset(value, actual[key], f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


@pytest.mark.parametrize("path", GOLDEN, ids=_id)
def test_golden_fixture(path: Path) -> None:
    spec = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    result = parse_raw(path.read_bytes(), ctx=_context(spec.get("context")))
    output = result.to_json(path.name)
    _assert_subset({k: v for k, v in spec.items() if k not in EXTRA_KEYS}, output, _id(path))
    message = output["message"] or ""
    for text in spec.get("message_contains", []):
        assert text in message, f"{_id(path)}: message lacks {text!r}"
    for text in spec.get("message_excludes", []):
        assert text not in message, f"{_id(path)}: message still has {text!r}"
    for text in spec.get("warnings_contain", []):
        assert any(text in w for w in output["warnings"]), f"{_id(path)}: no warning {text!r}"


@pytest.mark.parametrize("path", ALL_EML, ids=_id)
def test_extracted_fields_are_clean(path: Path) -> None:
    """Whatever the parser: single-line fields, no markup in the message."""
    output = parse_raw(path.read_bytes(), ctx=DEALER).to_json(path.name)
    for group in ("customer", "vehicle", "trade_in"):
        for key, value in (output[group] or {}).items():
            if isinstance(value, str):
                assert "\n" not in value and "\r" not in value, f"{group}.{key}: {value!r}"
    message = output["message"] or ""
    assert "<script" not in message.lower() and "</" not in message
    assert 0.0 <= output["confidence"] <= 1.0
