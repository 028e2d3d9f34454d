"""Learner forward + backward with and without prompt sharing, side by side in one run.

A GRPO batch holds G completions of each prompt. The padded pass runs prompt + completion
for every sequence; the shared pass runs each distinct prompt once and continues its G
completions from its KV cache (``learner.share_prompts``, rl_sql/engine/learner.py). Same
model (a random Llama with LoRA on every projection), same batch: real embedded-Spider
prompts, G random completions each. Prints seconds per pass and the speed-up, and the largest
log-prob difference between the two (they must agree).

    python benchmarks/learner_prompt_sharing.py [--prompts 8] [--generations 4] [--completion 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from rl_sql.config import Config, ScratchModelConfig  # noqa: E402
from rl_sql.data import format_prompt, load_examples  # noqa: E402
from rl_sql.engine.learner import LearnerWorker, shared_prompt_logprobs  # noqa: E402
from rl_sql.models.loading import encode_prompt  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--completion", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from peft import LoraConfig, get_peft_model

    from rl_sql.models.tiny import build_scratch_model, train_tokenizer

    # whole-database schemas in the prompt, as when the published figures were measured
    examples = load_examples(Config.load(ROOT / "jobs/tiny_grpo.yaml", ["data.context_scope=database"]).data)
    tokenizer = train_tokenizer([format_prompt(e, "plain") + e.answer for e in examples], 4096)
    shape = ScratchModelConfig(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.hidden // 64,
                               intermediate_size=args.hidden * 8 // 3 // 64 * 64, vocab_size=4096)
    model = get_peft_model(build_scratch_model(shape, tokenizer, "float32"),
                           LoraConfig(r=16, lora_alpha=32, target_modules=list(Config().lora.target_modules)))
    model.config.use_cache = False

    rng = random.Random(0)
    chosen = rng.sample(examples, args.prompts)
    distinct = [encode_prompt(tokenizer, format_prompt(e, "plain")) for e in chosen]
    prompts = [q for q in distinct for _ in range(args.generations)]
    completions = [[rng.randrange(4, len(tokenizer)) for _ in range(args.completion)] for _ in prompts]
    # only the padded pass of _completion_logprobs is used: no setup(), no model folder
    worker = LearnerWorker(Config.load(None, ["learner.share_prompts=false"]), model_path="unused")
    worker.device, worker.model = torch.device("cpu"), model

    def padded():
        return worker._completion_logprobs(model, prompts, completions)

    def shared():
        return shared_prompt_logprobs(model, prompts, completions, torch.device("cpu"))

    times: dict[str, list[float]] = {"padded": [], "shared": []}
    out = {}
    for _ in range(args.repeats):
        for name, fn in (("padded", padded), ("shared", shared)):
            model.zero_grad()
            start = time.perf_counter()
            logprobs_BT, _ = fn()
            logprobs_BT.sum().backward()
            times[name].append(time.perf_counter() - start)
            out[name] = logprobs_BT.detach()
    lengths = [len(q) for q in distinct]
    print(f"{args.prompts} prompts (tokens: min {min(lengths)}, mean {statistics.fmean(lengths):.0f}, max {max(lengths)}) "
          f"x G={args.generations} x {args.completion} completion tokens; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters; {args.threads} threads")
    print("| learner pass (forward + backward) | s (median of %d) |" % args.repeats)
    print("|---|---|")
    for name in times:
        print(f"| {name} | {statistics.median(times[name]):.2f} |")
    print(f"speed-up shared / padded: {statistics.median(times['padded']) / statistics.median(times['shared']):.2f}x; "
          f"largest log-prob difference {float((out['padded'] - out['shared']).abs().max()):.1e}")


if __name__ == "__main__":
    main()
