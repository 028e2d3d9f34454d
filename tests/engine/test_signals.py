"""Step and held-out metrics from scored completions, on hand-built reward results."""

import pytest

from rl_sql.engine.signals import pass_at_k, reward_signals, right_counts
from rl_sql.engine.types import Completion
from rl_sql.rewards import RewardResult


def _result(right: bool | None) -> RewardResult:
    """A combined result whose execution part matched (True), ran but differed (False) or failed (None)."""
    if right is None:
        details = {"error": "schema", "db_matches": []}
    else:
        details = {"db_matches": [right, right]}
    return RewardResult(score=1.0 if right else 0.0, details={"execution": {"score": float(bool(right)), "details": details}})


def _completions(results):
    return [[Completion([1], [2, 3], "x", [-0.1, -0.2]) for _ in results[i]] for i in sorted(results)]


def test_pass_at_k_counts_prompts_with_any_right_sample():
    results = {0: [_result(False), _result(True), _result(None)], 1: [_result(False), _result(None), _result(False)],
               2: [_result(True), _result(True), _result(True)], 3: [_result(None)] * 3}
    assert pass_at_k(results) == pytest.approx(0.5)
    signals = reward_signals(results, _completions(results))
    assert signals["reward/exec_match"] == pytest.approx(4 / 12)  # per sample, below pass@k
    assert signals["sql/runs_frac"] == pytest.approx(7 / 12)
    assert signals["sql/error/schema"] == pytest.approx(5 / 12)


def test_pass_at_k_needs_every_database_to_match():
    partial = RewardResult(score=0.5, details={"execution": {"score": 0.5, "details": {"db_matches": [True, False]}}})
    assert pass_at_k({0: [partial, partial]}) == 0.0
    assert pass_at_k({}) == 0.0


def test_right_counts_per_prompt_in_order():
    results = {1: [_result(True), _result(True), _result(False)], 0: [_result(False), _result(None)]}
    assert right_counts(results, 3) == [0, 2, 0]  # a prompt with no group counts 0
