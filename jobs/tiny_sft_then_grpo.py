"""Does GRPO help? Three policies on the same held-out prompts, with 95% bootstrap CIs:

1. the SFT start (the cached SFT policy of the recipe);
2. SFT continued for the same extra wall-clock time that GRPO trains (the control);
3. SFT then GRPO.

Held-out = unseen questions over the training databases, split so that no held-out gold
query (normalized) appears in training. Paired bootstrap CIs on the differences.

    python jobs/tiny_sft_then_grpo.py [--config jobs/tiny_grpo.yaml] [--steps N] [--out DIR] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray  # noqa: E402

from rl_sql.config import Config  # noqa: E402
from rl_sql.data import load_examples, split_examples  # noqa: E402
from rl_sql.engine.driver import GRPOTrainer  # noqa: E402
from rl_sql.eval.heldout import greedy_verdicts  # noqa: E402
from rl_sql.eval.stats import bootstrap_ci, paired_difference_ci  # noqa: E402
from rl_sql.models.sft import continue_sft, run_sft  # noqa: E402

log = logging.getLogger("sft_then_grpo")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(Path(__file__).with_name("tiny_grpo.yaml")))
    p.add_argument("--steps", type=int, default=None, help="GRPO steps (default: the recipe's train.max_steps)")
    p.add_argument("--out", default="runs/sft_then_grpo")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    overrides = list(args.overrides) + [f"train.out_dir={out}/grpo", "train.eval_every=0"]
    if args.steps:
        overrides.append(f"train.max_steps={args.steps}")
    config = Config.load(args.config, overrides)

    sft_policy = str(run_sft(config))
    _, heldout = split_examples(load_examples(config.data), config.data.heldout_fraction, config.data.seed)
    ray.init(include_dashboard=False) if not ray.is_initialized() else None

    # SFT then GRPO: time only the GRPO steps (not actor start-up or evaluation)
    trainer = GRPOTrainer(config, sft_policy, out / "grpo")
    grpo_seconds = 0.0
    try:
        while trainer.step < trainer.total_steps:
            start = time.perf_counter()
            trainer.train_step()
            grpo_seconds += time.perf_counter() - start
        final = trainer.save_final()
    finally:
        trainer.shutdown()

    # the control: SFT for the same extra wall-clock time
    control_policy = str(continue_sft(config, sft_policy, out / "sft_continued", seconds=grpo_seconds))

    verdicts = {
        "SFT start": greedy_verdicts(config, sft_policy, heldout),
        f"SFT continued (+{grpo_seconds:.0f} s)": greedy_verdicts(config, control_policy, heldout),
        f"SFT then GRPO ({trainer.step} steps, {grpo_seconds:.0f} s)": greedy_verdicts(config, sft_policy, heldout, adapter_dir=final["adapter"]),
    }
    ray.shutdown()
    write_table(out, verdicts, len(heldout))


def write_table(out: Path, verdicts: dict[str, list[dict]], n: int) -> None:
    names = list(verdicts)
    correct = {k: [r["correct"] for r in v] for k, v in verdicts.items()}
    lines = [f"Held-out: {n} unseen questions over the training databases (no held-out gold SQL in training).", "",
             "| policy | execution accuracy | 95% CI |", "|---|---|---|"]
    for name in names:
        acc, lo, hi = bootstrap_ci(correct[name])
        lines.append(f"| {name} | {acc:.3f} | [{lo:.3f}, {hi:.3f}] |")
    grpo, start, control = names[2], names[0], names[1]
    lines += ["", "| difference | value | 95% CI (paired bootstrap) |", "|---|---|---|"]
    for other in (start, control):
        d, lo, hi = paired_difference_ci(correct[grpo], correct[other])
        lines.append(f"| GRPO - {other} | {d:+.3f} | [{lo:+.3f}, {hi:+.3f}] |")
    table = "\n".join(lines)
    (out / "comparison.md").write_text(table + "\n")
    (out / "verdicts.json").write_text(json.dumps(verdicts, indent=1))
    print(table)


if __name__ == "__main__":
    main()
