"""GRPO: group-relative advantages and the clipped policy loss with a k3 KL penalty.

Advantages. Completion g of prompt p gets credit = reward minus its group's mean reward,
divided by the group's population std when ``scale`` (GRPO). Dr.GRPO does not divide by the
std (that up-weights groups whose rewards barely differ): for ``loss_type="dr_grpo"`` the
caller passes ``scale=False``. A group whose rewards are all equal carries no signal: it is
flagged in ``zero_variance_P`` and its advantages are exactly zero.

Loss. Per completion token t of sequence i, with the importance ratio taken against the
ROLLOUT log-probs (``old``: the policy that sampled the tokens):

    r_it  = exp(logp_it - old_it)
    l_it  = -min(r_it * A_i, clip(r_it, 1 - eps, 1 + eps) * A_i) + beta * k3_it
    k3_it = exp(ref_it - logp_it) - (ref_it - logp_it) - 1      (>= 0, = 0 iff logp = ref)

Normalization. An optimizer batch is split over micro-batches and data-parallel ranks; every
piece divides its token sum by the normalizer of the WHOLE optimizer batch, so the pieces'
losses add up to the batch loss and a token weighs the same wherever it lands:

- ``grpo``:    total completion tokens in the optimizer batch (token-level: a completion
  contributes in proportion to its length);
- ``dr_grpo``: sequences in the optimizer batch x max completion length (the rollout's
  ``max_new_tokens``), a constant that does not depend on the sampled lengths.
"""

from __future__ import annotations

from typing import Literal

import torch

LossType = Literal["grpo", "dr_grpo"]


def group_advantages(rewards_PG: torch.Tensor, *, scale: bool, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, G) rewards -> ((P, G) advantages, (P,) bool mask of zero-variance groups)."""
    if rewards_PG.ndim != 2 or rewards_PG.shape[1] < 2:
        raise ValueError(f"rewards must have shape (prompts, group size >= 2), got {tuple(rewards_PG.shape)}")
    rewards_PG = rewards_PG.float()
    mean_P1 = rewards_PG.mean(dim=1, keepdim=True)
    std_P1 = rewards_PG.std(dim=1, keepdim=True, unbiased=False)
    zero_variance_P = std_P1.squeeze(1) < eps
    advantages_PG = rewards_PG - mean_P1
    if scale:
        advantages_PG = advantages_PG / (std_P1 + eps)
    advantages_PG[zero_variance_P] = 0.0
    return advantages_PG, zero_variance_P


def loss_normalizer(loss_type: LossType, *, num_tokens_total: float, num_sequences_total: int, max_completion_length: int) -> float:
    """The optimizer batch's divisor: its completion tokens (grpo) or sequences x max length (dr_grpo)."""
    if loss_type == "grpo":
        if num_tokens_total <= 0:
            raise ValueError("loss_type 'grpo' needs num_tokens_total > 0 (the optimizer batch has no completion tokens)")
        return float(num_tokens_total)
    if loss_type == "dr_grpo":
        if num_sequences_total <= 0 or max_completion_length <= 0:
            raise ValueError("loss_type 'dr_grpo' needs num_sequences_total > 0 and max_completion_length > 0")
        return float(num_sequences_total * max_completion_length)
    raise ValueError(f"unknown loss_type {loss_type!r}: use 'grpo' or 'dr_grpo'")


def grpo_loss(
    logprobs_BT: torch.Tensor,
    old_logprobs_BT: torch.Tensor,
    ref_logprobs_BT: torch.Tensor | None,
    advantages_B: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    clip_eps: float,
    beta: float,
    loss_type: LossType,
    num_tokens_total: float,
    num_sequences_total: int = 0,
    max_completion_length: int = 0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """This micro-batch's share of the optimizer batch's loss, and statistics over its tokens.

    logprobs_BT: (B, T) log pi_theta(token) with grad; old_logprobs_BT: (B, T) rollout
    log-probs; ref_logprobs_BT: (B, T) reference log-probs, or None for no KL term;
    advantages_B: (B,); mask_BT: (B, T), 1 on real completion tokens, 0 on padding.
    num_tokens_total: completion tokens of the whole optimizer batch (grpo);
    num_sequences_total x max_completion_length: the dr_grpo normalizer.

    Metrics over this micro-batch's real tokens: ``clip_fraction`` (tokens on the clipped
    side, whose gradient is zero), ``ratio_mean``, ``kl`` (mean k3; only with a reference),
    and ``tokens`` (their count, to weight means across micro-batches and ranks).
    """
    normalizer = loss_normalizer(
        loss_type,
        num_tokens_total=num_tokens_total,
        num_sequences_total=num_sequences_total,
        max_completion_length=max_completion_length,
    )
    mask_BT = mask_BT.to(logprobs_BT.dtype)
    adv_B1 = advantages_B.to(logprobs_BT.dtype).unsqueeze(1)
    ratio_BT = torch.exp(logprobs_BT - old_logprobs_BT)
    unclipped_BT = ratio_BT * adv_B1
    clipped_BT = torch.clamp(ratio_BT, 1.0 - clip_eps, 1.0 + clip_eps) * adv_B1
    per_token_BT = -torch.minimum(unclipped_BT, clipped_BT)
    with_kl = ref_logprobs_BT is not None and beta > 0
    if with_kl:
        delta_BT = ref_logprobs_BT - logprobs_BT
        kl_BT = torch.exp(delta_BT) - delta_BT - 1.0
        per_token_BT = per_token_BT + beta * kl_BT
    loss = (per_token_BT * mask_BT).sum() / normalizer

    with torch.no_grad():
        tokens = float(mask_BT.sum())
        denom = max(tokens, 1.0)
        on_clipped_side_BT = ((ratio_BT > 1.0 + clip_eps) & (adv_B1 > 0)) | ((ratio_BT < 1.0 - clip_eps) & (adv_B1 < 0))
        metrics = {
            "clip_fraction": float((on_clipped_side_BT.to(mask_BT.dtype) * mask_BT).sum()) / denom,
            "ratio_mean": float((ratio_BT * mask_BT).sum()) / denom,
            "tokens": tokens,
        }
        if with_kl:
            metrics["kl"] = float((kl_BT * mask_BT).sum()) / denom
    return loss, metrics
