"""The reward interface: ``compute(prompt, completion, answer, **kwargs) -> RewardResult``.

A reward is a pure function of its inputs (caches aside): it never raises on a bad
completion (garbage, wrong SQL, SQL that errors all score low instead) and returns a
typed result. It raises only on a caller's mistake (for example no schema and no
database to run on), with a message that says what to pass.

kwargs a reward may read (``SqlExample.reward_kwargs()`` builds them):
``context`` (CREATE TABLE text), ``db_paths`` (real SQLite files; empty = synthesize
from context + answer), ``example_id`` (for logs).

A custom reward subclasses ``BaseReward``::

    class ShortAnswer(BaseReward):
        \"\"\"1.0 for completions of at most 200 characters, falling linearly to 0 at 1000.\"\"\"

        name = "short"

        def compute(self, prompt, completion, answer, **kwargs):
            n = len(completion)
            score = 1.0 if n <= 200 else max(0.0, 1.0 - (n - 200) / 800)
            return RewardResult(score=score, details={"chars": n})

    combined = CombinedReward([(create_sql_reward(cfg, "execution"), 0.8), (ShortAnswer(), 0.2)])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class RewardResult:
    """A score and why: ``details`` holds plain values (str, float, bool, lists, dicts) for logs."""

    score: float
    details: dict[str, Any] = field(default_factory=dict)


class BaseReward(ABC):
    name: ClassVar[str] = "reward"
    """Key of this reward in a CombinedReward's details and in logged metrics."""
    max_score: float = 1.0
    """The score of a perfect completion (what the gold earns)."""

    @abstractmethod
    def compute(self, prompt: str, completion: str, answer: str, **kwargs: Any) -> RewardResult:
        """Score ``completion`` for the question in ``prompt`` whose gold SQL is ``answer``."""
