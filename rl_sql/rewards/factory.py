"""``create_sql_reward(reward_cfg, reward_type)``: the configured reward."""

from __future__ import annotations

from rl_sql.config import RewardConfig
from rl_sql.rewards.base import BaseReward
from rl_sql.rewards.combined import CombinedReward
from rl_sql.rewards.execution import ExecutionReward
from rl_sql.rewards.semantic import SemanticReward
from rl_sql.rewards.syntax import SyntaxReward

REWARD_TYPES = ("combined", "syntax", "execution", "semantic")


def create_sql_reward(reward_cfg: RewardConfig, reward_type: str = "combined") -> BaseReward:
    """``combined``: syntax, execution and semantic weighted by ``reward_cfg.*_weight``
    (defaults 0.2 / 0.6 / 0.2), with execution still computed (weight 0, for the execution-accuracy
    metrics) when its weight is zero; or one of them alone."""
    if reward_type == "syntax":
        return SyntaxReward()
    if reward_type == "execution":
        return ExecutionReward(reward_cfg)
    if reward_type == "semantic":
        return SemanticReward()
    if reward_type == "combined":
        execution = ExecutionReward(reward_cfg)
        return CombinedReward(
            [
                (SyntaxReward(), reward_cfg.syntax_weight),
                (execution, reward_cfg.execution_weight),
                (SemanticReward(), reward_cfg.semantic_weight),
            ],
            monitor=[execution],
        )
    raise ValueError(f"unknown reward_type {reward_type!r}: valid types are {', '.join(REWARD_TYPES)}")
