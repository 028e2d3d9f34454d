"""Every placement decision of a run, in one place.

A run asks for one placement group: a bundle per learner worker (1 GPU each on GPUs),
then a bundle per rollout worker (``tensor_parallel_size`` GPUs each). Reward actors sit
outside it on whatever CPU is left. If the group cannot be placed within
``cluster.placement_timeout_s`` the run stops with what it asked for and what the
cluster has, instead of hanging.

Inside a Ray Tune trial the trial's own placement group (``trial_bundles``: the trial
driver's bundle, then the run's bundles, then one per reward actor) is used instead, so
trials never wait on each other's resources.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rl_sql.config import Config

log = logging.getLogger(__name__)


class PlacementError(RuntimeError):
    """The cluster cannot hold the actors a run asks for."""


@dataclass
class Placement:
    config: Config
    use_gpu: bool
    pg: PlacementGroup | None
    learner_bundles: list[int]
    rollout_bundles: list[int]
    reward_actors: int
    reward_cpus: float
    reward_bundles: list[int] | None = None
    owns_pg: bool = True

    @property
    def learner_offset(self) -> int:
        """Index of the first learner bundle in ``pg``."""
        return self.learner_bundles[0] if self.learner_bundles else 0

    def learner_strategy(self, rank: int) -> PlacementGroupSchedulingStrategy | None:
        return self._strategy(self.learner_bundles[rank])

    def rollout_strategy(self, index: int) -> PlacementGroupSchedulingStrategy | None:
        return self._strategy(self.rollout_bundles[index])

    def reward_strategy(self, index: int) -> PlacementGroupSchedulingStrategy | None:
        return self._strategy(self.reward_bundles[index]) if self.reward_bundles else None

    def _strategy(self, bundle: int) -> PlacementGroupSchedulingStrategy | None:
        if self.pg is None:
            return None
        return PlacementGroupSchedulingStrategy(
            placement_group=self.pg,
            placement_group_bundle_index=bundle,
            placement_group_capture_child_tasks=True,
        )

    def release(self) -> None:
        if self.pg is not None and self.owns_pg:
            remove_placement_group(self.pg)
            self.pg = None


def connect(config: Config) -> None:
    """Join the cluster: ``cluster.address``, else RAY_ADDRESS / a running head, else a new local one."""
    if ray.is_initialized():
        return
    address = config.cluster.address or os.environ.get("RAY_ADDRESS")
    runtime_env = {"env_vars": {"DS_ACCELERATOR": os.environ.get("DS_ACCELERATOR", "cpu"), "TOKENIZERS_PARALLELISM": "false"}}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
    else:
        ray.init(runtime_env=runtime_env, include_dashboard=False)


def plan(config: Config) -> tuple[list[dict[str, float]], bool]:
    """The bundles a run needs, learner workers first, and whether they use GPUs."""
    total = ray.cluster_resources()
    use_gpu = config.cluster.use_gpu if config.cluster.use_gpu is not None else total.get("GPU", 0) > 0
    bundles: list[dict[str, float]] = []
    for _ in range(max(config.learner.num_workers, 0)):
        bundle = {"CPU": config.cluster.cpus_per_learner_worker}
        if use_gpu:
            bundle["GPU"] = 1.0
        bundles.append(bundle)
    for _ in range(config.rollout.num_workers):
        bundle = {"CPU": config.cluster.cpus_per_rollout_worker}
        if use_gpu:
            bundle["GPU"] = float(config.rollout.tensor_parallel_size)
        bundles.append(bundle)
    return bundles, use_gpu


def trial_bundles(config: Config, *, driver_cpus: float = 0.25, reward_cpus: float = 0.5) -> list[dict[str, float]]:
    """Bundles of one Ray Tune trial: its driver, the run's actors, and its reward actors."""
    bundles, _ = plan(config)
    rewards = [{"CPU": reward_cpus}] * (config.cluster.num_reward_actors or 1)
    return [{"CPU": driver_cpus}, *bundles, *rewards]


def place(config: Config) -> Placement:
    """Reserve the run's bundles (or fail fast) and size the reward pool from the CPUs left."""
    from ray.util import get_current_placement_group

    current = get_current_placement_group()
    if current is not None:
        return _place_in(current, config)
    bundles, use_gpu = plan(config)
    available = ray.available_resources()
    pg = placement_group(bundles, strategy="PACK", name="rl_sql-run")
    try:
        ray.get(pg.ready(), timeout=config.cluster.placement_timeout_s)
    except ray.exceptions.GetTimeoutError:
        remove_placement_group(pg)
        asked = _sum(bundles)
        raise PlacementError(
            f"could not place the run's actors within {config.cluster.placement_timeout_s:.0f} s.\n"
            f"  asked for: {len(bundles)} bundles {bundles} (total {asked})\n"
            f"  available: {_fmt(available)}\n"
            "Lower learner.num_workers / rollout.num_workers / rollout.tensor_parallel_size or "
            "cluster.cpus_per_*_worker, or add nodes."
        ) from None
    n_learners = max(config.learner.num_workers, 0)
    spare = max(ray.available_resources().get("CPU", 0.0), 0.0)
    reward_actors = config.cluster.num_reward_actors or max(1, int(spare))
    reward_cpus = min(1.0, spare / reward_actors) if spare > 0 else 0.0
    log.info(
        "placed %d learner and %d rollout bundles (%s); %d reward actors at %.2f CPU each",
        n_learners, config.rollout.num_workers, "GPU" if use_gpu else "CPU", reward_actors, reward_cpus,
    )
    return Placement(
        config=config,
        use_gpu=use_gpu,
        pg=pg,
        learner_bundles=list(range(n_learners)),
        rollout_bundles=list(range(n_learners, n_learners + config.rollout.num_workers)),
        reward_actors=reward_actors,
        reward_cpus=reward_cpus,
    )


def _place_in(pg: PlacementGroup, config: Config) -> Placement:
    """Use the placement group this process runs in (a Tune trial laid out by ``trial_bundles``)."""
    bundles, use_gpu = plan(config)
    n_learners = max(config.learner.num_workers, 0)
    first = 1  # bundle 0 is the trial driver's
    n_rewards = len(pg.bundle_specs) - first - len(bundles)
    if n_rewards < 1:
        raise PlacementError(
            f"the trial's placement group has {len(pg.bundle_specs)} bundles; this run needs "
            f"1 (driver) + {len(bundles)} (learner/rollout) + at least 1 (reward): build it with trial_bundles(config)"
        )
    reward_first = first + len(bundles)
    return Placement(
        config=config,
        use_gpu=use_gpu,
        pg=pg,
        learner_bundles=list(range(first, first + n_learners)),
        rollout_bundles=list(range(first + n_learners, reward_first)),
        reward_actors=n_rewards,
        reward_cpus=float(pg.bundle_specs[reward_first].get("CPU", 0.0)),
        reward_bundles=list(range(reward_first, reward_first + n_rewards)),
        owns_pg=False,
    )


def _sum(bundles: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for bundle in bundles:
        for key, value in bundle.items():
            total[key] = total.get(key, 0.0) + value
    return total


def _fmt(resources: dict[str, float]) -> str:
    keep = {k: v for k, v in resources.items() if k in ("CPU", "GPU", "memory") or k.startswith("accelerator")}
    return ", ".join(f"{k}={v:g}" for k, v in sorted(keep.items())) or "nothing"
