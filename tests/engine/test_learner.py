"""The DeepSpeed learner on CPU: real DeepSpeed (gloo), real PEFT, real Ray, a tiny Llama built here.

Local mode (``learner.num_workers=0``) runs in this process; the Ray tests start two actors
(``ray.init(num_cpus=2)`` by the module's fixture) and check that they train exactly like
one worker on the same optimizer batches, under ZeRO-2 and ZeRO-3.
"""

import pytest
import ray
import torch

from rl_sql.config import Config
from rl_sql.engine.learner import LearnerGroup
from rl_sql.engine.types import TrainBatch
from rl_sql.engine.weight_sync import write_adapter
from rl_sql.models.tiny import make_tiny_policy

pytestmark = pytest.mark.slow

LORA_R = 8


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return make_tiny_policy(tmp_path_factory.mktemp("policy"))


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def _config(*extra: str) -> Config:
    """fp32 so different world sizes / ZeRO stages agree to float noise; one optimizer batch = 8 sequences."""
    base = [
        "model.dtype=float32", "model.quantization=none", "model.gradient_checkpointing=false",
        f"lora.r={LORA_R}", "lora.alpha=16", "lora.dropout=0.0", "lora.target_modules=[q_proj, v_proj, down_proj]",
        "grpo.beta=0.1", "learner.num_workers=0", "learner.zero_stage=2", "learner.learning_rate=0.01",
        "learner.per_device_batch_size=4", "learner.gradient_accumulation_steps=2", "learner.torch_threads=1",
        "rollout.max_new_tokens=16", "cluster.cpus_per_learner_worker=1",
    ]
    return Config.load(None, base + list(extra))


def _batch(policy: str, n: int = 12) -> TrainBatch:
    """``n`` completions of 3 prompts (groups of 4), real token ids of the tiny tokenizer, mixed lengths."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(policy)
    prompts = [tok.encode(f"schema: singer(id, name, age)\nquestion: how many singers are older than {a}?\nSQL: ") for a in (20, 30, 40)]
    completions = [tok.encode(s) for s in (
        "SELECT count(*) FROM singer", "SELECT name FROM singer WHERE age > 56", "SELECT *", "SELECT count(*) FROM singer WHERE age > 30",
    )]
    rewards = torch.tensor([[1.0, 0.2, 0.0, 0.6], [0.0, 1.0, 0.3, 0.3], [0.5, 0.1, 0.9, 0.0]])
    adv = (rewards - rewards.mean(1, keepdim=True)) / rewards.std(1, keepdim=True)
    batch = TrainBatch([], [], [], [])
    for i in range(n):
        p, g = divmod(i, 4)
        batch.prompt_ids.append(prompts[p % 3])
        batch.completion_ids.append(completions[g])
        batch.old_logprobs.append([-5.5] * len(completions[g]))
        batch.advantages.append(float(adv[p % 3, g]))
    return batch


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# ---------------------------------------------------------------- local mode
def test_a_step_changes_the_adapter_and_not_the_base(policy):
    group = LearnerGroup(_config(), policy)
    base_before = {n: p.detach().clone() for n, p in group.local.model.named_parameters() if "lora_" not in n}
    before = group.get_adapter(0).tensors
    metrics = group.train_step(_batch(policy))
    after = group.get_adapter(1).tensors
    assert all(not torch.equal(before[k], after[k]) for k in before if "lora_B" in k)
    assert all(torch.equal(p.detach(), base_before[n]) for n, p in group.local.model.named_parameters() if "lora_" not in n)
    assert metrics["optimizer_steps"] == 2.0  # 12 sequences, 8 per optimizer step -> 2 steps of 6
    assert metrics["tokens"] == _batch(policy).num_tokens()
    group.shutdown()


def test_kl_is_zero_at_the_first_step_and_grows_after(policy):
    group = LearnerGroup(_config("learner.gradient_accumulation_steps=4"), policy)  # one optimizer step per train step
    first = group.train_step(_batch(policy))
    assert first["kl"] == pytest.approx(0.0, abs=1e-7)  # lora_B starts at zero: policy == reference
    later = [group.train_step(_batch(policy))["kl"] for _ in range(3)]
    assert later[-1] > 1e-5
    group.shutdown()


def test_logprobs_equal_a_plain_transformers_peft_forward(policy, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    group = LearnerGroup(_config(), policy)
    batch = _batch(policy)
    group.train_step(batch)
    folder = write_adapter(group.get_adapter(1), tmp_path / "adapter")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32), str(folder)).eval()
    prompt, completion = batch.prompt_ids[1], batch.completion_ids[1]
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids).logits[0].float(), -1)
    expected = [lp[len(prompt) - 1 + t, c].item() for t, c in enumerate(completion)]
    base = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32).eval()
    with torch.no_grad():
        base_lp = torch.log_softmax(base(ids).logits[0].float(), -1)
    assert max(abs(lp[len(prompt) - 1 + t, c].item() - base_lp[len(prompt) - 1 + t, c].item()) for t, c in enumerate(completion)) > 1e-4
    assert group.logprobs(prompt, completion) == pytest.approx(expected, abs=1e-5)
    with torch.no_grad():  # at the sampling temperature: log-softmax(logits / T), as vLLM's processed log-probs
        lp_t = torch.log_softmax(model(ids).logits[0].float() / 0.7, -1)
    expected_t = [lp_t[len(prompt) - 1 + t, c].item() for t, c in enumerate(completion)]
    assert expected_t != pytest.approx(expected, abs=1e-3)
    assert group.logprobs(prompt, completion, 0.7) == pytest.approx(expected_t, abs=1e-5)
    group.shutdown()


@pytest.mark.parametrize("trained_at,ratio_is_one", [(0.7, True), (1.0, False)])
def test_the_loss_uses_log_probs_at_the_rollout_temperature(policy, trained_at, ratio_is_one):
    """Rollout log-probs taken at T=0.7 (vLLM's processed log-probs) give a ratio of exactly 1 on
    the first pass only when the learner computes its log-probs at the rollout temperature too."""
    group = LearnerGroup(_config(f"rollout.temperature={trained_at}", "learner.gradient_accumulation_steps=3"), policy)
    batch = _batch(policy)  # 12 sequences = one optimizer batch: every micro-batch sees the same weights
    batch.old_logprobs = [group.logprobs(p, c, 0.7) for p, c in zip(batch.prompt_ids, batch.completion_ids)]
    ratio = group.train_step(batch)["ratio_mean"]
    assert (abs(ratio - 1.0) < 1e-5) == ratio_is_one, ratio
    group.shutdown()


def test_checkpoint_restores_adapter_optimizer_and_dropout_rng(policy, tmp_path):
    cfg = _config("lora.dropout=0.1")  # the next step is identical only if the dropout RNG comes back too
    batch = _batch(policy)
    group = LearnerGroup(cfg, policy)
    group.train_step(batch)  # Adam moments are non-zero from here
    group.save_checkpoint(str(tmp_path / "ckpt"))
    saved = group.get_adapter(1).tensors
    expected = group.train_step(batch)
    expected_adapter = group.get_adapter(2).tensors
    group.shutdown()

    fresh = LearnerGroup(cfg, policy)
    fresh.load_checkpoint(str(tmp_path / "ckpt"))
    assert _max_diff(saved, fresh.get_adapter(1).tensors) == 0.0
    got = fresh.train_step(batch)
    assert got["loss"] == pytest.approx(expected["loss"], abs=1e-7)
    assert _max_diff(expected_adapter, fresh.get_adapter(2).tensors) < 1e-7
    fresh.shutdown()


def test_save_final_writes_an_adapter_and_a_merged_model_that_agree(policy, tmp_path):
    from transformers import AutoModelForCausalLM

    group = LearnerGroup(_config(), policy)
    batch = _batch(policy)
    group.train_step(batch)
    saved = group.save_final(str(tmp_path / "final"), merged=True)
    assert (tmp_path / "final/adapter/adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(saved["merged"], dtype=torch.float32).eval()
    prompt, completion = batch.prompt_ids[0], batch.completion_ids[0]
    with torch.no_grad():
        lp = torch.log_softmax(merged(torch.tensor([prompt + completion])).logits[0], -1)
    merged_lp = [lp[len(prompt) - 1 + t, c].item() for t, c in enumerate(completion)]
    assert group.logprobs(prompt, completion) == pytest.approx(merged_lp, abs=1e-5)
    group.shutdown()


def test_qlora_4bit_trains_on_cpu(policy, tmp_path):
    import bitsandbytes as bnb

    group = LearnerGroup(_config("model.quantization=4bit", "model.gradient_checkpointing=true"), policy)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in group.local.model.modules())
    before = group.get_adapter(0).tensors
    metrics = group.train_step(_batch(policy))
    assert all(not torch.equal(before[k], v) for k, v in group.get_adapter(1).tensors.items() if "lora_B" in k)
    assert metrics["grad_norm"] > 0
    saved = group.save_final(str(tmp_path / "final"), merged=True)  # merged into the unquantized base
    assert (tmp_path / "final/merged/config.json").is_file() and "merged" in saved
    group.shutdown()


def test_full_fine_tuning_updates_the_weights_it_pushes(policy):
    group = LearnerGroup(_config("lora.enabled=false", "grpo.beta=0"), policy)
    before = group.get_full_state_dict(0)
    group.train_step(_batch(policy))
    after = group.get_full_state_dict(1)
    assert before.keys() == after.keys() and "model.embed_tokens.weight" in after
    assert not torch.equal(before["model.layers.0.mlp.down_proj.weight"], after["model.layers.0.mlp.down_proj.weight"])
    group.shutdown()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.quantization=4bit", "learner.zero_stage=3"], "ZeRO-3"),
        (["lora.enabled=false", "grpo.beta=0.1"], "grpo.beta"),
    ],
)
def test_impossible_combinations_are_clear_errors(policy, overrides, message):
    with pytest.raises(ValueError, match=message):
        LearnerGroup(_config(*overrides), policy)


def test_malformed_batches_are_clear_errors(policy):
    group = LearnerGroup(_config(), policy)
    batch = _batch(policy, 4)
    with pytest.raises(ValueError, match="empty batch"):
        group.train_step(TrainBatch([], [], [], []))
    batch.old_logprobs[2] = batch.old_logprobs[2][:-1]
    with pytest.raises(ValueError, match="sequence 2"):
        group.train_step(batch)
    group.shutdown()


# ---------------------------------------------------------------- Ray actors
@pytest.fixture(scope="module")
def one_worker_reference(policy):
    """Adapter and metrics of world size 1 after two steps: 12 sequences (2 optimizer steps), then 1."""
    group = LearnerGroup(_config(), policy)
    steps = [group.train_step(_batch(policy)), group.train_step(_batch(policy, 1))]
    adapter = group.get_adapter(2)
    group.shutdown()
    return adapter, steps


@pytest.mark.parametrize("stage", [2, 3])
def test_two_ray_workers_train_like_one(policy, ray_cluster, one_worker_reference, stage):
    """Same optimizer batches (2 x 4 x 1 = 1 x 4 x 2 sequences), so the same update; the 1-sequence
    step leaves rank 1 with nothing but a masked stand-in."""
    group = LearnerGroup(_config("learner.num_workers=2", f"learner.zero_stage={stage}", "learner.gradient_accumulation_steps=1"), policy)
    assert {"learner-0", "learner-1"} <= set(ray.util.list_named_actors())
    steps = [group.train_step(_batch(policy)), group.train_step(_batch(policy, 1))]
    adapter = group.get_adapter(2)
    reference, reference_steps = one_worker_reference

    a = next(v for k, v in adapter.tensors.items() if k.endswith("layers.0.self_attn.q_proj.lora_A.weight"))
    b = next(v for k, v in adapter.tensors.items() if k.endswith("layers.0.self_attn.q_proj.lora_B.weight"))
    assert a.shape == (LORA_R, 128) and b.shape == (128, LORA_R)  # full shapes (gathered under ZeRO-3)
    # Adam moves every weight by ~lr (0.01) per step whatever its gradient's size, so float noise in
    # near-zero gradients shows up as ~1e-4 here; a mis-weighted rank would show up as ~lr.
    assert _max_diff(adapter.tensors, reference.tensors) < 1e-3
    for got, want in zip(steps, reference_steps):
        for key in ("loss", "kl", "clip_fraction", "grad_norm", "tokens", "optimizer_steps"):
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key

    batch = _batch(policy)
    per_rank = ray.get([w.logprobs.remote(batch.prompt_ids[0], batch.completion_ids[0]) for w in group.workers])
    assert per_rank[0] == pytest.approx(per_rank[1], abs=1e-6)  # the ranks hold the same policy
    group.shutdown()
