"""Does the gold earn the top execution score? A data check for a reward setup.

``check_gold(examples, reward, schema_only=...)`` scores each example's own gold SQL as
the completion. On real databases that checks the data (a gold that fails or times out);
with ``schema_only=True`` the databases are dropped and synthesized from the context, which
checks the synthesizer: the gold must match itself on every synthesized database, and be
informative (non-empty) on at least one.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rl_sql.data.example import SqlExample
from rl_sql.rewards.execution import MATCH_SCORE, ExecutionReward


@dataclass
class GoldCheck:
    """Counts over the examples checked; ``failures`` maps a reason to how many examples had it."""

    total: int = 0
    top: int = 0
    """Gold scored MATCH_SCORE (1.0)."""
    gold_nonempty: int = 0
    """Gold returned at least one row on at least one database."""
    gold_informative: int = 0
    """Synthesized only: the synthesizer's stricter flag (a row with a value other than NULL, 0, '')."""
    failures: Counter[str] = field(default_factory=Counter)
    failed_ids: dict[str, list[str]] = field(default_factory=dict)
    empty_ids: list[str] = field(default_factory=list)
    """Examples whose gold returned no row on any database."""
    uninformative_ids: list[str] = field(default_factory=list)
    """Synthesized only: examples the synthesizer reports as not informative."""
    seconds: float = 0.0

    @property
    def top_rate(self) -> float:
        return self.top / self.total if self.total else 0.0

    @property
    def nonempty_rate(self) -> float:
        return self.gold_nonempty / self.total if self.total else 0.0

    @property
    def informative_rate(self) -> float:
        return self.gold_informative / self.total if self.total else 0.0


def _reason(details: dict, score: float) -> str:
    """A short reason for a gold that did not score top."""
    if details.get("error"):
        kind = details["error"]
        if details.get("synth_error"):
            kind += f" ({details['synth_error'].split(':', 1)[0]})"
        return kind
    if details.get("empty_gold_cap"):
        return "empty_gold_cap"
    return f"mismatch (score {score:.2f})"


def check_gold(examples: Sequence[SqlExample], reward: ExecutionReward, *, schema_only: bool = False) -> GoldCheck:
    """Score every example's gold against itself (see the module docstring)."""
    report = GoldCheck()
    start = time.perf_counter()
    for example in examples:
        if schema_only:
            example = dataclasses.replace(example, db_paths=())
        result = reward.compute("", example.answer, example.answer, **example.reward_kwargs())
        details = result.details
        report.total += 1
        if result.score == MATCH_SCORE:
            report.top += 1
        else:
            reason = _reason(details, result.score)
            report.failures[reason] += 1
            report.failed_ids.setdefault(reason, []).append(example.id)
        if details.get("gold_empty") is False:
            report.gold_nonempty += 1
        else:
            report.empty_ids.append(example.id)
        if schema_only:
            if reward.databases(example.answer, example.context, ()).gold_nonempty:
                report.gold_informative += 1
            else:
                report.uninformative_ids.append(example.id)
    report.seconds = time.perf_counter() - start
    return report
