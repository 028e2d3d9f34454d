"""Rewards for generated SQL: syntax, execution (real or synthesized databases), semantic, combined.

Quick start::

    from rl_sql.config import Config
    from rl_sql.rewards import create_sql_reward

    reward_fn = create_sql_reward(Config().reward, reward_type="combined")
    result = reward_fn.compute(prompt, completion, answer, context=..., db_paths=...)
    result.score, result.details
"""

from rl_sql.rewards.base import BaseReward, RewardResult
from rl_sql.rewards.combined import CombinedReward
from rl_sql.rewards.execution import ExecutionReward
from rl_sql.rewards.factory import REWARD_TYPES, create_sql_reward
from rl_sql.rewards.semantic import SemanticReward, canonical_sql
from rl_sql.rewards.syntax import SyntaxReward

__all__ = [
    "REWARD_TYPES",
    "BaseReward",
    "CombinedReward",
    "ExecutionReward",
    "RewardResult",
    "SemanticReward",
    "SyntaxReward",
    "canonical_sql",
    "create_sql_reward",
]
