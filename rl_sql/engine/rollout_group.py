"""The rollout workers of a run: named Ray actors (``rollout-0``, ...) holding vLLM engines."""

from __future__ import annotations

import time

import ray

from rl_sql.config import Config
from rl_sql.engine.placement import Placement
from rl_sql.engine.rollout import RolloutWorker, rollout_env_vars
from rl_sql.engine.types import AdapterPayload


class RolloutGroup:
    def __init__(self, config: Config, model_path: str, placement: Placement):
        self.config = config
        remote_cls = ray.remote(RolloutWorker)
        gpus = float(config.rollout.tensor_parallel_size) if placement.use_gpu else 0.0
        self.workers = [
            remote_cls.options(
                name=f"{config.cluster.actor_name_prefix}rollout-{i}",
                num_cpus=config.cluster.cpus_per_rollout_worker,
                num_gpus=gpus,
                scheduling_strategy=placement.rollout_strategy(i),
                runtime_env={"env_vars": rollout_env_vars(config)},
            ).remote(config, model_path, i)
            for i in range(config.rollout.num_workers)
        ]
        ray.get([w.current_adapter_step.remote() for w in self.workers])  # engines built

    def __len__(self) -> int:
        return len(self.workers)

    def generate_async(self, prompts: list[str], n: int, *, chunks: int, **sampling) -> dict[ray.ObjectRef, list[int]]:
        """Start generation in ``chunks`` pieces spread round-robin over the workers.

        Returns {ref: prompt indices}; each ref resolves to [prompt][n] Completions, so the
        caller can score a chunk as soon as it arrives.
        """
        chunks = max(1, min(chunks, len(prompts)))
        bounds = [round(i * len(prompts) / chunks) for i in range(chunks + 1)]
        refs: dict[ray.ObjectRef, list[int]] = {}
        for c in range(chunks):
            idx = list(range(bounds[c], bounds[c + 1]))
            worker = self.workers[c % len(self.workers)]
            refs[worker.generate.remote([prompts[i] for i in idx], n, **sampling)] = idx
        return refs

    def push_adapter(self, adapter: AdapterPayload) -> float:
        """Every worker loads the adapter before this returns; seconds taken."""
        start = time.perf_counter()
        ref = ray.put(adapter)
        ray.get([w.load_adapter.remote(ref) for w in self.workers])
        return time.perf_counter() - start

    def push_full_weights(self, step: int, state_dict: dict) -> float:
        start = time.perf_counter()
        ref = ray.put(state_dict)
        ray.get([w.load_full_weights.remote(step, ref) for w in self.workers])
        return time.perf_counter() - start

    def score_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[list[float]]:
        """Per-token log-probs of a fixed completion, from every worker."""
        return ray.get([w.score_logprobs.remote(prompt_ids, completion_ids) for w in self.workers])

    def shutdown(self) -> None:
        for worker in self.workers:
            ray.kill(worker)
        self.workers = []
