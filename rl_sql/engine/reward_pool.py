"""The reward pool: `SqlRewardActor`s on CPU behind `ray.util.ActorPool`.

Each task scores one prompt group (its G completions), so the gold query runs once per
database per group and the actor's caches stay warm. Groups are submitted as soon as
their completions arrive (`submit_group`), so scoring overlaps generation. Actors are
restarted by Ray when they die (`max_restarts=-1`) and their in-flight task is retried
(`max_task_retries=-1`); a batch that takes longer than the timeout is an error naming
the groups still pending.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util import ActorPool

from rl_sql.config import RewardConfig
from rl_sql.rewards import RewardResult, create_sql_reward

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupRequest:
    """One prompt and its G completions, with what the reward needs to score them."""

    group_index: int
    prompt: str
    completions: tuple[str, ...]
    answer: str
    reward_kwargs: dict = field(default_factory=dict)


class SqlRewardActor:
    """Scores completions with the SQL core's combined reward (syntax, execution, semantic)."""

    def __init__(self, reward_cfg: RewardConfig):
        self.reward = create_sql_reward(reward_cfg, reward_type="combined")
        self.scored = 0

    def score_group(self, request: GroupRequest) -> tuple[int, list[RewardResult]]:
        results = [
            self.reward.compute(request.prompt, completion, request.answer, **request.reward_kwargs)
            for completion in request.completions
        ]
        self.scored += len(results)
        return request.group_index, results

    def pid(self) -> int:
        return os.getpid()


class RewardPool:
    """`num_actors` named `SqlRewardActor`s (``reward-0``, ``reward-1``, ...) in a Ray ActorPool."""

    def __init__(
        self,
        reward_cfg: RewardConfig,
        num_actors: int,
        *,
        num_cpus: float,
        timeout_s: float,
        strategy: Callable[[int], Any] = lambda index: None,
        name_prefix: str = "",
    ):
        """``strategy(i)``: the scheduling strategy of actor i (a placement-group bundle, or None)."""
        remote_cls = ray.remote(SqlRewardActor)
        self.actors = [
            remote_cls.options(
                name=f"{name_prefix}reward-{i}",
                num_cpus=num_cpus,
                max_restarts=-1,
                max_task_retries=-1,
                scheduling_strategy=strategy(i),
            ).remote(reward_cfg)
            for i in range(num_actors)
        ]
        self.pool = ActorPool(self.actors)
        self.timeout_s = timeout_s
        self._pending: set[int] = set()

    def submit_group(self, request: GroupRequest) -> None:
        """Queue one group for scoring; it starts as soon as an actor is free."""
        self._pending.add(request.group_index)
        self.pool.submit(lambda actor, req: actor.score_group.remote(req), request)

    def collect(self) -> dict[int, list[RewardResult]]:
        """Wait for every submitted group; {group_index: [RewardResult per completion]}."""
        out: dict[int, list[RewardResult]] = {}
        while self.pool.has_next():
            try:
                index, results = self.pool.get_next_unordered(timeout=self.timeout_s)
            except TimeoutError:
                raise RewardTimeout(
                    f"reward pool: no group finished within {self.timeout_s:.0f} s; still pending: "
                    f"{sorted(self._pending)}. Raise cluster.reward_batch_timeout_s or reward.timeout_s, "
                    "or add reward actors (cluster.num_reward_actors)."
                ) from None
            self._pending.discard(index)
            out[index] = results
        return out

    def score(self, requests: list[GroupRequest]) -> dict[int, list[RewardResult]]:
        for request in requests:
            self.submit_group(request)
        return self.collect()

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
