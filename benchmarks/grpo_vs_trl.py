"""rl_sql vs TRL's GRPOTrainer: the same model, data, G, completion length and steps, one run.

The model is a random-initialised Llama (~20M parameters by default) with a BPE tokenizer
trained on the embedded Spider subset, so both systems generate full-length completions
and generation (not Python overhead) dominates. Both score with rl_sql's combined reward
and train a LoRA adapter with the same rank and learning rate. The first step of each is
a warm-up and is not timed.

    python benchmarks/grpo_vs_trl.py [--steps 4] [--prompts 8] [--generations 4] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

from rl_sql.config import Config  # noqa: E402
from rl_sql.data import format_prompt, load_examples  # noqa: E402


# The data the published figures were measured on (whole-database schemas in the prompt, every
# training question a GRPO prompt); the tiny recipe has since changed both, for learning, not speed.
BENCH_DATA = ["data.context_scope=database", "data.rl_fraction=0", "data.paraphrase_heldout=false"]


def build_model(out: Path, hidden: int, layers: int, heads: int, vocab: int) -> tuple[str, int]:
    from rl_sql.models.tiny import build_scratch_model, save_policy, train_tokenizer
    from rl_sql.config import ScratchModelConfig

    examples = load_examples(Config.load(ROOT / "jobs/tiny_grpo.yaml", BENCH_DATA).data)
    texts = [format_prompt(e, "plain") + e.answer for e in examples]
    tokenizer = train_tokenizer(texts, vocab, out / "tokenizer")
    shape = ScratchModelConfig(hidden_size=hidden, num_layers=layers, num_heads=heads,
                               intermediate_size=hidden * 8 // 3 // 64 * 64, vocab_size=vocab)
    model = build_scratch_model(shape, tokenizer, "float32", seed=0)
    save_policy(model, tokenizer, out / "policy")
    return str(out / "policy"), sum(p.numel() for p in model.parameters())


def overrides(args, policy: str, tmp: Path) -> list[str]:
    return [
        *BENCH_DATA,
        f"model.name_or_path={policy}", "model.init=pretrained", "model.dtype=float32",
        "train.sft_first=false", "train.screen_samples=0", f"train.prompts_per_step={args.prompts}", f"grpo.num_generations={args.generations}",
        f"rollout.max_new_tokens={args.max_new_tokens}", "rollout.temperature=1.0",
        "grpo.skip_zero_variance_groups=false", "train.parity_every=0", "train.checkpoint_every=100000",
        f"learner.per_device_batch_size={args.prompts * args.generations}", "learner.gradient_accumulation_steps=1",
        "learner.torch_threads=2", f"reward.cache_dir={tmp}/synth", f"train.out_dir={tmp}/rl_sql",
        "logging.wandb_mode=disabled", "logging.progress_bar=false", "lora.r=16", "lora.alpha=32",
    ]


def same_prompts(config: Config, steps: int) -> list:
    """The prompts rl_sql's driver samples in its first ``steps`` steps, in order: TRL gets exactly
    these (prompt lengths vary several-fold across the Spider databases, so the two systems must
    see the same ones)."""
    from rl_sql.data import load_splits
    from rl_sql.engine.sampler import PromptSampler

    rl = load_splits(config.data).rl
    sampler = PromptSampler(rl, seed=config.train.seed)
    return [e for _ in range(steps) for e in sampler.next_batch(config.train.prompts_per_step)]


def run_rl_sql(config: Config, policy: str, steps: int) -> dict:
    import ray

    from rl_sql.engine.driver import GRPOTrainer

    ray.init(num_cpus=2, include_dashboard=False)
    trainer = GRPOTrainer(config, policy, config.train.out_dir)
    try:
        trainer.train_step()  # warm-up
        start, phases, tokens, completions = time.perf_counter(), [], 0, 0
        for _ in range(steps):
            m = trainer.train_step()
            phases.append(m)
            tokens += m["completion/len_mean"] * config.train.prompts_per_step * config.grpo.num_generations
            completions += config.train.prompts_per_step * config.grpo.num_generations
        elapsed = time.perf_counter() - start
    finally:
        trainer.shutdown()
        ray.shutdown()
    phase_means = {k: statistics.fmean(m.get(f"time/{k}", 0.0) for m in phases) for k in ("generate", "score", "update", "push")}
    return {"elapsed": elapsed, "completions": completions, "tokens": tokens, "phases": phase_means}


def run_trl(config: Config, policy: str, steps: int, args) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rl_sql.rewards import create_sql_reward

    torch.set_num_threads(2)
    examples = same_prompts(config, steps + 1)
    data = Dataset.from_list(
        [{"prompt": format_prompt(e, "plain"), "answer": e.answer, "context": e.context, "db_paths": list(e.db_paths)} for e in examples]
    )
    reward = create_sql_reward(config.reward, "combined")

    def sql_reward(prompts, completions, answer, context, db_paths, **_):
        return [reward.compute(p, c, a, context=x, db_paths=tuple(d)).score for p, c, a, x, d in zip(prompts, completions, answer, context, db_paths)]

    class Clock(TrainerCallback):
        def __init__(self):
            self.starts, self.tokens = [], 0

        def on_step_begin(self, args_, state, control, **kw):
            self.starts.append(time.perf_counter())

    clock = Clock()
    n = args.prompts * args.generations
    trl_args = GRPOConfig(
        output_dir=str(Path(config.train.out_dir).parent / "trl"), use_cpu=True, bf16=False,
        num_generations=args.generations, max_completion_length=args.max_new_tokens, temperature=1.0,
        per_device_train_batch_size=n, gradient_accumulation_steps=1, generation_batch_size=n,
        max_steps=steps + 1, learning_rate=config.learner.learning_rate, beta=config.grpo.beta,
        logging_steps=1, report_to=[], save_strategy="no", disable_tqdm=True, use_vllm=False,
        shuffle_dataset=False,  # the very prompts rl_sql trained on, in its order (see same_prompts)
    )
    model = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, reward_funcs=[sql_reward], args=trl_args, train_dataset=data,
        peft_config=LoraConfig(r=16, lora_alpha=32, target_modules=config.lora.target_modules, task_type="CAUSAL_LM"),
        callbacks=[clock],
    )
    trainer.train()
    end = time.perf_counter()
    elapsed = end - clock.starts[1]  # step 0 is the warm-up
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h][1:]
    completions = steps * n
    return {"elapsed": elapsed, "completions": completions, "tokens": statistics.fmean(lengths) * completions if lengths else float("nan")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=4096)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="grpo_vs_trl-"))
    policy, n_params = build_model(tmp, args.hidden, args.layers, args.heads, args.vocab)
    config = Config.load(ROOT / "jobs/tiny_grpo.yaml", overrides(args, policy, tmp))
    print(f"model: {n_params / 1e6:.1f}M parameters; {args.prompts} prompts x G={args.generations} x "
          f"{args.max_new_tokens} new tokens; {args.steps} timed steps after 1 warm-up", flush=True)
    ours = run_rl_sql(config, policy, args.steps)
    theirs = run_trl(config, policy, args.steps, args)
    print("\n| system | completions/s | tokens/s | s/step |")
    print("|---|---|---|---|")
    for name, r in (("rl_sql", ours), ("TRL GRPOTrainer", theirs)):
        print(f"| {name} | {r['completions'] / r['elapsed']:.2f} | {r['tokens'] / r['elapsed']:.1f} | {r['elapsed'] / args.steps:.2f} |")
    print(f"\nratio rl_sql / TRL: completions/s {ours['completions'] / ours['elapsed'] / (theirs['completions'] / theirs['elapsed']):.2f}x, "
          f"tokens/s {ours['tokens'] / ours['elapsed'] / (theirs['tokens'] / theirs['elapsed']):.2f}x")
    print("rl_sql time per phase (s): " + ", ".join(f"{k} {v:.2f}" for k, v in ours["phases"].items()))


if __name__ == "__main__":
    main()
