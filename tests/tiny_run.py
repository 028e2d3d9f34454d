"""Overrides that shrink jobs/tiny_grpo.yaml to a seconds-long run for the tests."""

from pathlib import Path


def tiny_overrides(tmp: Path) -> list[str]:
    return [
        "model.dtype=float32",  # exact parity between vLLM and the learner
        f"model.name_or_path={tmp}/sft",
        "model.scratch={hidden_size: 128, num_layers: 2, num_heads: 4, intermediate_size: 256, vocab_size: 1024}",
        "model.max_prompt_tokens=512",
        "data.max_examples=300",
        "sft.max_minutes=",  # a fixed number of epochs, not a time budget: the same policy on a loaded machine
        "sft.epochs=6",
        f"sft.output_dir={tmp}/sft",
        f"reward.cache_dir={tmp}/synth",
        "rollout.max_new_tokens=32",
        "rollout.kv_cache_gib=0.5",
        "rollout.max_model_len=768",
        "train.prompts_per_step=4",
        "learner.per_device_batch_size=8",
        "learner.gradient_accumulation_steps=2",
        "learner.torch_threads=1",
        "train.eval_examples=8",
        # this seconds-long policy answers no GRPO prompt, so the recipe's screen would keep none;
        # test_driver_on_cpu screens with a policy that answers some
        "train.screen_samples=0",
        "train.parity_every=1",
        "train.checkpoint_every=2",
        f"train.out_dir={tmp}/run",
        "logging.wandb_mode=offline",
        "logging.progress_bar=false",
    ]
