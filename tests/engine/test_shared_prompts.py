"""Prompt sharing in the learner: each distinct prompt runs once, its completions continue from
its KV cache; log-probs and gradients must equal one padded pass of prompt + completion."""

import random

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from rl_sql.config import Config
from rl_sql.engine.learner import LearnerWorker, shared_prompt_logprobs
from rl_sql.models.tiny import make_tiny_policy


@pytest.fixture(scope="module")
def lora_model(tmp_path_factory):
    path = make_tiny_policy(tmp_path_factory.mktemp("policy"))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj"],
                                             init_lora_weights=False))  # non-zero B: the adapter matters
    model.config.use_cache = False  # as the learner sets it
    return path, model


def _padded_pass(path, model, prompts, completions, temperature=1.0):
    worker = LearnerWorker(Config.load(None, ["learner.share_prompts=false"]), path)
    worker.device, worker.model = torch.device("cpu"), model
    return worker._completion_logprobs(model, prompts, completions, temperature)


def _grads(model, logprobs_BT):
    model.zero_grad()
    (logprobs_BT * torch.linspace(-1, 1, logprobs_BT.shape[1])).sum().backward()
    return [p.grad.clone() for p in model.parameters() if p.requires_grad]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_shared_prompt_pass_matches_the_padded_pass(lora_model, temperature):
    path, model = lora_model
    rng = random.Random(0)
    distinct = [[rng.randrange(5, 300) for _ in range(n)] for n in (7, 19, 3, 12)]
    prompts = [p for p in distinct for _ in range(3)]
    completions = [[rng.randrange(5, 300) for _ in range(rng.randrange(1, 12))] for _ in prompts]
    rng.shuffle(order := list(range(len(prompts))))  # groups need not be contiguous
    prompts, completions = [prompts[i] for i in order], [completions[i] for i in order]

    padded_BT, padded_mask_BT = _padded_pass(path, model, prompts, completions, temperature)
    shared_BT, shared_mask_BT = shared_prompt_logprobs(model, prompts, completions, torch.device("cpu"), temperature)
    assert torch.equal(padded_mask_BT, shared_mask_BT)
    assert torch.allclose(shared_BT, padded_BT, atol=1e-5), (shared_BT - padded_BT).abs().max()
    for g_padded, g_shared in zip(_grads(model, padded_BT), _grads(model, shared_BT)):
        assert torch.allclose(g_shared, g_padded, atol=1e-4, rtol=1e-4)


def test_a_wrong_prompt_changes_the_log_probs(lora_model):
    """The check above can fail: completions scored after another prompt's cache differ."""
    path, model = lora_model
    prompts = [[11, 12, 13, 14], [11, 12, 13, 14], [40, 41, 42, 43]]
    completions = [[50, 51, 52], [53, 54], [50, 51, 52]]
    shared_BT, _ = shared_prompt_logprobs(model, prompts, completions, torch.device("cpu"))
    assert not torch.allclose(shared_BT[0], shared_BT[2], atol=1e-4)
