"""Greedy execution accuracy of a policy (a model folder, optionally plus a LoRA adapter) on
examples with their databases, generated through a vLLM rollout worker in a Ray actor.

Verdicts use the training reward's rules (``ExecutionReward``: the prediction matches the
gold on every database of the example, real or synthesized; DISTINCT kept significant).
"""

from __future__ import annotations

import json
from pathlib import Path

import ray
from safetensors.torch import load_file

from rl_sql.config import Config
from rl_sql.data import format_prompt
from rl_sql.data.example import SqlExample
from rl_sql.engine.rollout import RolloutWorker, rollout_env_vars
from rl_sql.engine.types import AdapterPayload
from rl_sql.rewards import create_sql_reward


def read_adapter(folder: str | Path, step: int = 0) -> AdapterPayload:
    folder = Path(folder)
    return AdapterPayload(
        step=step,
        peft_config=json.loads((folder / "adapter_config.json").read_text()),
        tensors=load_file(str(folder / "adapter_model.safetensors")),
    )


def execution_verdict(details: dict) -> bool:
    return "error" not in details and bool(details.get("db_matches")) and all(details["db_matches"])


def greedy_verdicts(config: Config, model_path: str, examples: list[SqlExample], *, adapter_dir: str | None = None) -> list[dict]:
    """One record per example: id, correct, error kind, the SQL written."""
    from rl_sql.models.loading import load_tokenizer

    tokenizer = load_tokenizer(model_path)
    worker = ray.remote(RolloutWorker).options(
        num_cpus=0, runtime_env={"env_vars": rollout_env_vars(config)}, name=None
    ).remote(config, model_path, 0)
    try:
        if adapter_dir:
            ray.get(worker.load_adapter.remote(read_adapter(adapter_dir)))
        prompts = [format_prompt(e, config.data.prompt_style, tokenizer) for e in examples]
        groups = ray.get(worker.generate.remote(prompts, 1, temperature=0.0))
    finally:
        ray.kill(worker)
    reward = create_sql_reward(config.reward, "execution")
    records = []
    for example, prompt, group in zip(examples, prompts, groups):
        text = group[0].text
        result = reward.compute(prompt, text, example.answer, **example.reward_kwargs())
        records.append({
            "id": example.id, "correct": execution_verdict(result.details),
            "error": result.details.get("error"), "completion": text,
        })
    return records
