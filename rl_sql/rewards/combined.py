"""CombinedReward: a weighted sum of rewards.

score = sum_i weight_i * score_i over the components with weight > 0 (a zero-weight
component is not computed). ``details[name]`` holds each component's score, weight and
details; ``max_score`` = sum_i weight_i * max_score_i is what the gold earns.

``monitor`` rewards are computed and reported in ``details`` with weight 0 but never added
to the score: the engine always monitors execution, so execution accuracy stays measured
when a sweep gives the execution reward no weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rl_sql.rewards.base import BaseReward, RewardResult


class CombinedReward(BaseReward):
    name = "combined"

    def __init__(self, components: Sequence[tuple[BaseReward, float]], *, monitor: Sequence[BaseReward] = ()):
        if not components:
            raise ValueError("CombinedReward needs at least one (reward, weight) pair")
        names = [reward.name for reward, _ in components]
        if len(set(names)) != len(names):
            raise ValueError(f"CombinedReward components need distinct names, got {names}")
        for reward, weight in components:
            if weight < 0:
                raise ValueError(f"weight of {reward.name!r} is {weight}: weights must be >= 0")
        self.components = [(reward, float(weight)) for reward, weight in components if weight > 0]
        if not self.components:
            raise ValueError(f"every weight is zero in {names}: at least one must be > 0")
        self.max_score = sum(weight * reward.max_score for reward, weight in self.components)
        weighted = {reward.name for reward, _ in self.components}
        self.monitor = [reward for reward in monitor if reward.name not in weighted]

    @property
    def weights(self) -> dict[str, float]:
        return {reward.name: weight for reward, weight in self.components}

    def compute(self, prompt: str, completion: str, answer: str, **kwargs: Any) -> RewardResult:
        total = 0.0
        details: dict[str, Any] = {}
        for reward, weight in self.components:
            result = reward.compute(prompt, completion, answer, **kwargs)
            total += weight * result.score
            details[reward.name] = {"score": result.score, "weight": weight, "details": result.details}
        for reward in self.monitor:
            result = reward.compute(prompt, completion, answer, **kwargs)
            details[reward.name] = {"score": result.score, "weight": 0.0, "details": result.details}
        return RewardResult(total, details)
