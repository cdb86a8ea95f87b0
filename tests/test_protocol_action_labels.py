"""Every protocol action the code writes has a label, so the lead page never shows a raw
code such as ``opened`` or ``handed_over`` in its German history."""

from __future__ import annotations

import ast
from pathlib import Path

from mailgate.escalation.feedback import OPENED
from mailgate.webui.labels import LABELS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mailgate", "escalation", "distribution", "webui")


def written_actions() -> set[str]:
    """``action="…"`` of every call in the code (argparse's ``add_argument`` excepted)."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name == "add_argument":
                    continue
                for keyword in node.keywords:
                    value = keyword.value
                    if keyword.arg == "action" and isinstance(value, ast.Constant):
                        found.add(str(value.value))
    return found


def test_every_written_protocol_action_has_a_label() -> None:
    actions = written_actions() | {OPENED}
    assert len(actions) > 20, "the scan found too few actions: did the code move?"
    unlabelled = sorted(a for a in actions if a not in LABELS["action"])
    assert not unlabelled, f"protocol actions without a label: {unlabelled}"
