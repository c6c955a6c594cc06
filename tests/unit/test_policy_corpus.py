"""The command policy against a corpus of bypass attempts (tests/cases/policy/bypass.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smallyi.config import PolicyRule
from smallyi.policy.rules import Action, CommandPolicy

CASES = Path(__file__).parents[1] / "cases" / "policy"
POLICIES = {name: CommandPolicy([PolicyRule(**r) for r in rules])
            for name, rules in yaml.safe_load((CASES / "policies.yaml").read_text()).items()}
CORPUS: list[dict[str, Any]] = yaml.safe_load((CASES / "bypass.yaml").read_text())


@pytest.mark.parametrize("case", CORPUS, ids=[f"{c['policy']}-{c['expect']}-{c['why']}" for c in CORPUS])
def test_bypass_attempt_gets_the_expected_verdict(case: dict[str, Any]) -> None:
    """Each corpus line gets its expected verdict (deny, approve or allow), with a reason when not allowed."""
    verdict = POLICIES[case["policy"]].check(case["cmd"], role="operator", groups=["prod"])
    assert verdict.action is Action(case["expect"]), f"{case['cmd']!r}: {verdict}"
    assert verdict.allowed or verdict.reason


def test_the_corpus_is_large_and_covers_every_verdict() -> None:
    """The corpus holds at least 100 lines, with denials, approvals and allowed commands."""
    assert len(CORPUS) >= 100
    assert {c["expect"] for c in CORPUS} == {"deny", "approve", "allow"}
