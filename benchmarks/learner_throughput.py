"""rl_sql's learner on SmolLM2-135M-Instruct beside a plain PEFT forward and backward pass of the
same batch, side by side in one run.

The batch is a GRPO step of the embedded default (jobs/smol_grpo.yaml): P chat prompts of the
embedded Spider training set (whole-database schema), G completions each, of the lengths given
(random tokens: the cost does not depend on which tokens). Every system trains on that batch:

- ``plain PEFT``: what a user writes first: LoRA on every layer, each sequence padded as
  prompt + completion, logits at every position, log-softmax, backward (no optimizer step).
- ``rl_sql learner``: ``LearnerWorker.train_step`` (DeepSpeed ZeRO-2, GRPO loss, one
  optimizer step), as configured by the recipe; then the same with LoRA on every layer
  (``lora.last_layers`` unset) and without prompt sharing, to show what each part is worth.

Tokens/s counts the batch's prompt + completion tokens (each completion with its own prompt, as
the plain pass processes them) over the wall time of one pass; median of ``--repeats``.

    python benchmarks/learner_throughput.py [--prompts 8] [--generations 8] [--completion 96] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DS_ACCELERATOR", "cpu")

import torch  # noqa: E402

from rl_sql.config import Config  # noqa: E402
from rl_sql.data import format_prompt, load_examples  # noqa: E402
from rl_sql.engine.learner import LearnerWorker  # noqa: E402
from rl_sql.engine.types import TrainBatch  # noqa: E402
from rl_sql.models.loading import encode_prompt, load_tokenizer, resolve_model_path  # noqa: E402

RECIPE = ROOT / "jobs/smol_grpo.yaml"


def make_batch(config: Config, tokenizer, prompts: int, generations: int, completion: int, seed: int = 0) -> TrainBatch:
    rng = random.Random(seed)
    examples = rng.sample(load_examples(config.data), prompts)
    distinct = [encode_prompt(tokenizer, format_prompt(e, "chat", tokenizer)) for e in examples]
    prompt_ids = [p for p in distinct for _ in range(generations)]
    lengths = [rng.randint(completion // 2, completion) for _ in prompt_ids]  # completions end at different places
    completion_ids = [[rng.randrange(100, len(tokenizer)) for _ in range(n)] for n in lengths]
    advantages = [rng.choice([-1.0, 1.0]) for _ in prompt_ids]
    return TrainBatch(prompt_ids, completion_ids, [[0.0] * n for n in lengths], advantages)


def plain_peft_pass(model_path: str, dtype: torch.dtype, batch: TrainBatch, micro: int, repeats: int) -> list[float]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=list(Config().lora.target_modules),
                                             task_type="CAUSAL_LM"))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for m in range(0, len(batch), micro):
            seqs = [p + c for p, c in zip(batch.prompt_ids[m:m + micro], batch.completion_ids[m:m + micro])]
            L = max(map(len, seqs))
            ids = torch.zeros((len(seqs), L), dtype=torch.long)
            mask = torch.zeros((len(seqs), L), dtype=torch.long)
            for i, s in enumerate(seqs):
                ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            (logp * mask[:, 1:]).sum().backward()
        times.append(time.perf_counter() - start)
        model.zero_grad()
    return times


def learner_pass(config: Config, model_path: str, batch: TrainBatch, repeats: int) -> list[float]:
    worker = LearnerWorker(config, model_path)
    worker.setup()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        worker.train_step(batch)
        times.append(time.perf_counter() - start)
    worker.close()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--completion", type=int, default=96, help="longest completion (lengths drawn from half of it up)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    base = Config.load(RECIPE, [f"learner.torch_threads={args.threads}"])
    model_path = resolve_model_path(base.model.name_or_path)
    tokenizer = load_tokenizer(model_path)
    batch = make_batch(base, tokenizer, args.prompts, args.generations, args.completion)
    micro = base.learner.per_device_batch_size
    tokens = sum(len(pi) + len(c) for pi, c in zip(batch.prompt_ids, batch.completion_ids))
    dtype = base.model.resolved_dtype
    systems = {
        "plain PEFT (LoRA on all 30 layers, padded prompt + completion, all logits)":
            lambda: plain_peft_pass(model_path, getattr(torch, dtype), batch, micro, args.repeats),
        f"rl_sql learner, recipe (LoRA on the last {base.lora.last_layers} layers, shared prompts)":
            lambda: learner_pass(base, model_path, batch, args.repeats),
        "rl_sql learner, LoRA on all 30 layers, shared prompts":
            lambda: learner_pass(Config.load(RECIPE, [f"learner.torch_threads={args.threads}", "lora.last_layers=null"]),
                                 model_path, batch, args.repeats),
        "rl_sql learner, LoRA on all 30 layers, no prompt sharing":
            lambda: learner_pass(Config.load(RECIPE, [f"learner.torch_threads={args.threads}", "lora.last_layers=null",
                                                      "learner.share_prompts=false"]), model_path, batch, args.repeats),
    }
    print(f"SmolLM2-135M-Instruct, {dtype}, {args.threads} threads; batch: {args.prompts} prompts x G={args.generations}, "
          f"prompt tokens mean {statistics.fmean(map(len, batch.prompt_ids)):.0f}, completion tokens mean "
          f"{statistics.fmean(map(len, batch.completion_ids)):.0f}; {tokens} prompt + completion tokens a pass")
    results = {name: statistics.median(run()) for name, run in systems.items()}
    baseline = next(iter(results.values()))
    print(f"| system | s per pass (median of {args.repeats}) | tokens/s | vs plain PEFT |")
    print("|---|---|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.1f} | {tokens / seconds:.0f} | {baseline / seconds:.2f}x |")


if __name__ == "__main__":
    main()
