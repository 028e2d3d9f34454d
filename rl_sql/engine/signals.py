"""Step metrics from scored completions: the signals that catch a silent GRPO failure.

reward mean/std and each component's mean, execution-match rate, fraction of SQL that
runs, SQL error kinds, completion length and truncation; ``pass_at_k`` for held-out sampling.
"""

from __future__ import annotations

from collections import Counter
from statistics import fmean, pstdev

from rl_sql.engine.types import Completion
from rl_sql.rewards import RewardResult


def execution_details(result: RewardResult) -> dict:
    return result.details.get("execution", {}).get("details", {})


def exec_match(result: RewardResult) -> bool:
    """The prediction's result equals the gold's on every database of the example."""
    ex = execution_details(result)
    return "error" not in ex and bool(ex.get("db_matches")) and all(ex["db_matches"])


def right_counts(results: dict[int, list[RewardResult]], n_prompts: int) -> list[int]:
    """Right completions per prompt, in prompt order (prompt i's group is ``results[i]``)."""
    return [sum(map(exec_match, results.get(i, []))) for i in range(n_prompts)]


def pass_at_k(results: dict[int, list[RewardResult]]) -> float:
    """Fraction of prompts with at least one right completion among their k (k = the group size).

    GRPO can only reinforce right answers the policy samples, so pass@k of the starting policy
    bounds what sharpening the sampled distribution can add to its accuracy."""
    groups = [group for group in results.values() if group]
    if not groups:
        return 0.0
    return fmean(any(exec_match(r) for r in group) for group in groups)


def reward_signals(results: dict[int, list[RewardResult]], completions: list[list[Completion]]) -> dict[str, float]:
    flat = [r for i in sorted(results) for r in results[i]]
    if not flat:
        return {}
    scores = [r.score for r in flat]
    out = {"reward/mean": fmean(scores), "reward/std": pstdev(scores)}
    for name in flat[0].details:
        out[f"reward/{name}"] = fmean(r.details[name]["score"] for r in flat)
    out["reward/exec_match"] = fmean(exec_match(r) for r in flat)
    errors = Counter(execution_details(r).get("error", "none") for r in flat)
    out["sql/runs_frac"] = errors.get("none", 0) / len(flat)
    for kind, count in errors.items():
        if kind != "none":
            out[f"sql/error/{kind}"] = count / len(flat)
    lengths = [len(c.token_ids) for group in completions for c in group]
    out["completion/len_mean"] = fmean(lengths) if lengths else 0.0
    out["completion/truncated_frac"] = fmean(c.finish_reason == "length" for g in completions for c in g) if lengths else 0.0
    return out
