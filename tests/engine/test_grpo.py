"""The GRPO advantages and loss: one property per test, on hand-built tensors."""

import pytest
import torch

from rl_sql.engine.grpo import group_advantages, grpo_loss, loss_normalizer


def _loss(logp, old, adv, *, mask=None, ref=None, **kw):
    """Loss, metrics and d loss / d logp for a (B, T) batch; grpo normalized by its own tokens unless told."""
    logp = logp.clone().requires_grad_(True)
    mask = torch.ones_like(logp) if mask is None else mask
    args = dict(clip_eps=0.2, beta=0.0, loss_type="grpo", num_tokens_total=float(mask.sum()))
    args.update(kw)
    loss, metrics = grpo_loss(logp, old, ref, adv, mask, **args)
    loss.backward()
    return loss, metrics, logp.grad


# ---------------------------------------------------------------- advantages
def test_advantages_are_zero_mean_per_group():
    adv, _ = group_advantages(torch.tensor([[1.0, 0.0, 0.5, 0.5], [0.2, 0.4, 0.6, 0.9]]), scale=True)
    assert torch.allclose(adv.mean(dim=1), torch.zeros(2), atol=1e-6)


def test_scaling_divides_by_the_group_std():
    rewards = torch.tensor([[0.0, 4.0]])  # mean 2, population std 2
    raw, _ = group_advantages(rewards, scale=False)
    scaled, _ = group_advantages(rewards, scale=True)
    assert raw.tolist() == [[-2.0, 2.0]]
    assert torch.allclose(scaled, torch.tensor([[-1.0, 1.0]]), atol=1e-5)


@pytest.mark.parametrize("scale", [True, False])
def test_zero_variance_groups_are_flagged_and_carry_no_advantage(scale):
    adv, zero = group_advantages(torch.tensor([[0.3, 0.3, 0.3], [0.0, 1.0, 0.0]]), scale=scale)
    assert zero.tolist() == [True, False]
    assert torch.equal(adv[0], torch.zeros(3)) and adv[1].abs().sum() > 0


def test_rewards_without_groups_are_an_error():
    with pytest.raises(ValueError, match="group size"):
        group_advantages(torch.tensor([[1.0], [0.0]]), scale=True)


# ---------------------------------------------------------------- policy loss
def test_descent_raises_positive_and_lowers_negative_advantage_tokens():
    logp = torch.full((2, 3), -1.0)
    _, _, grad = _loss(logp, logp.clone(), torch.tensor([1.0, -1.0]))
    assert (grad[0] < 0).all() and (grad[1] > 0).all()


def test_ratio_is_clipped_beyond_eps_with_zero_gradient_on_the_clipped_side():
    old = torch.zeros(2, 3)
    ratios = torch.tensor([[1.5, 1.1, 0.5], [0.5, 0.9, 1.5]])  # eps 0.2
    _, metrics, grad = _loss(torch.log(ratios), old, torch.tensor([1.0, -1.0]))
    # A > 0: ratio 1.5 is clipped (no gradient); 1.1 is inside; 0.5 stays unclipped (min keeps the pessimistic term).
    # A < 0: ratio 0.5 is clipped; 0.9 inside; 1.5 stays unclipped.
    assert grad[0, 0] == 0 and grad[0, 1] != 0 and grad[0, 2] != 0
    assert grad[1, 0] == 0 and grad[1, 1] != 0 and grad[1, 2] != 0
    assert metrics["clip_fraction"] == pytest.approx(2 / 6)


def test_k3_kl_is_zero_at_the_reference():
    logp = torch.log(torch.tensor([[0.5, 0.2, 0.9]]))
    _, metrics, grad = _loss(logp, logp.clone(), torch.tensor([0.0]), ref=logp.clone(), beta=0.5)
    assert metrics["kl"] == pytest.approx(0.0, abs=1e-7)
    assert grad.abs().max() == pytest.approx(0.0, abs=1e-7)  # nothing pulls the policy when it equals the reference


def test_k3_kl_is_nonnegative_and_pulls_toward_the_reference():
    gen = torch.Generator().manual_seed(0)
    logp = -torch.rand(8, 16, generator=gen) * 5
    ref = -torch.rand(8, 16, generator=gen) * 5
    _, metrics, grad = _loss(logp, logp.clone(), torch.zeros(8), ref=ref, beta=1.0)
    assert metrics["kl"] > 0
    per_token = torch.exp(ref - logp) - (ref - logp) - 1
    assert (per_token >= 0).all()
    assert (torch.sign(-grad) == torch.sign(ref - logp)).all()  # descent moves logp toward ref


def test_no_kl_metric_without_a_reference():
    logp = torch.zeros(1, 2)
    _, metrics, _ = _loss(logp, logp.clone(), torch.tensor([1.0]), beta=0.5)
    assert "kl" not in metrics


def test_token_level_normalisation_weighs_a_completion_by_its_tokens():
    logp = torch.zeros(2, 4)
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    _, _, grad = _loss(logp, logp.clone(), torch.tensor([1.0, 1.0]), mask=mask)
    assert torch.allclose(grad[0], torch.full((4,), -1 / 5))  # every real token weighs 1 / (batch tokens)
    assert grad[1, 0] == pytest.approx(-1 / 5)
    assert grad[1, 1:].abs().sum() == 0  # padding gets no gradient


def test_micro_batch_losses_add_up_to_the_batch_loss():
    gen = torch.Generator().manual_seed(1)
    logp, old = -torch.rand(4, 5, generator=gen), -torch.rand(4, 5, generator=gen)
    adv = torch.tensor([1.0, -0.5, 0.3, -0.8])
    mask = torch.tensor([[1.0] * 5, [1.0] * 2 + [0.0] * 3, [1.0] * 4 + [0.0], [1.0] + [0.0] * 4])
    total = float(mask.sum())
    whole, _, _ = _loss(logp, old, adv, mask=mask, num_tokens_total=total)
    first, _, _ = _loss(logp[:2], old[:2], adv[:2], mask=mask[:2], num_tokens_total=total)
    second, _, _ = _loss(logp[2:], old[2:], adv[2:], mask=mask[2:], num_tokens_total=total)
    assert (first + second).item() == pytest.approx(whole.item(), abs=1e-6)


def test_dr_grpo_weighs_a_token_by_a_constant_independent_of_other_lengths():
    """grpo: a token's weight shrinks when another completion grows; dr_grpo: 1 / (sequences x max length)."""
    adv = torch.tensor([1.0, 1.0])
    short = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    long = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    logp = torch.zeros(2, 4)
    dr = dict(loss_type="dr_grpo", num_sequences_total=2, max_completion_length=8)
    _, _, g_short = _loss(logp, logp.clone(), adv, mask=short, **dr, num_tokens_total=float(short.sum()))
    _, _, g_long = _loss(logp, logp.clone(), adv, mask=long, **dr, num_tokens_total=float(long.sum()))
    assert g_short[0, 0] == g_long[0, 0] == pytest.approx(-1 / 16)
    _, _, t_short = _loss(logp, logp.clone(), adv, mask=short)
    _, _, t_long = _loss(logp, logp.clone(), adv, mask=long)
    assert t_short[0, 0] == pytest.approx(-1 / 2) and t_long[0, 0] == pytest.approx(-1 / 5)


def test_bad_normalizer_settings_are_errors():
    with pytest.raises(ValueError, match="loss_type"):
        loss_normalizer("ppo", num_tokens_total=3, num_sequences_total=1, max_completion_length=4)
    with pytest.raises(ValueError, match="max_completion_length"):
        loss_normalizer("dr_grpo", num_tokens_total=3, num_sequences_total=1, max_completion_length=0)
    with pytest.raises(ValueError, match="num_tokens_total"):
        loss_normalizer("grpo", num_tokens_total=0, num_sequences_total=1, max_completion_length=4)
