"""What moves between the engine's actors: completions, training batches, adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Completion:
    """One sampled completion of one prompt, as the rollout worker produced it."""

    prompt_token_ids: list[int]
    token_ids: list[int]
    text: str
    logprobs: list[float]
    """(T,) log pi_old(token_t | prefix) under the rollout policy, one per generated token."""
    finish_reason: str = "stop"


@dataclass
class TrainBatch:
    """Sequences for one GRPO update; index i is one completion (B = prompts x G)."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    old_logprobs: list[list[float]]
    """(B, T_i) rollout log-probs of each completion token."""
    advantages: list[float]
    """(B,) group-relative advantage of each completion."""

    def __len__(self) -> int:
        return len(self.completion_ids)

    def shard(self, rank: int, world_size: int) -> "TrainBatch":
        """Every world_size-th sequence starting at rank (ranks get near-equal shares)."""
        idx = range(rank, len(self), world_size)
        return TrainBatch(
            prompt_ids=[self.prompt_ids[i] for i in idx],
            completion_ids=[self.completion_ids[i] for i in idx],
            old_logprobs=[self.old_logprobs[i] for i in idx],
            advantages=[self.advantages[i] for i in idx],
        )

    def num_tokens(self) -> int:
        return sum(len(c) for c in self.completion_ids)


@dataclass
class AdapterPayload:
    """A LoRA adapter as the learner pushes it: PEFT's adapter_config.json contents and its tensors (CPU)."""

    step: int
    peft_config: dict
    tensors: dict[str, torch.Tensor] = field(repr=False)

    def num_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())
