"""Does GRPO help? Three policies on the same held-out prompts, with 95% bootstrap CIs:

1. the SFT start (the cached SFT policy of the recipe);
2. SFT continued for the same extra wall-clock time that GRPO trains (the control);
3. SFT then GRPO.

Held-out = unseen questions over the training databases, split so that no held-out gold
query (normalized) appears in training. Paired bootstrap CIs on the differences. When full
Spider is present (``data.spider_dir``), the three policies are also scored on unseen
databases (Spider train databases outside the embedded subset, ``--other-dbs`` examples
sampled) and on Spider dev (``--dev`` examples; 0 = all).

    python jobs/tiny_sft_then_grpo.py [--config jobs/tiny_grpo.yaml] [--steps N] [--out DIR]
        [--other-dbs 300] [--dev 0] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
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
    p.add_argument("--other-dbs", type=int, default=300, help="examples on unseen Spider train databases (0: none)")
    p.add_argument("--dev", type=int, default=0, help="Spider dev examples (0: all; -1: none)")
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
        if config.train.screen_samples:  # the recipe's prompt screen is part of GRPO's cost
            start = time.perf_counter()
            trainer.screen_prompts()
            grpo_seconds += time.perf_counter() - start
        while trainer.step < trainer.total_steps:
            start = time.perf_counter()
            trainer.train_step()
            grpo_seconds += time.perf_counter() - start
        final = trainer.save_final()
    finally:
        trainer.shutdown()

    # the control: SFT for the same extra wall-clock time
    control_policy = str(continue_sft(config, sft_policy, out / "sft_continued", seconds=grpo_seconds))

    policies = {
        "SFT start": (sft_policy, None),
        f"SFT continued (+{grpo_seconds:.0f} s)": (control_policy, None),
        f"SFT then GRPO ({trainer.step} steps, {grpo_seconds:.0f} s)": (sft_policy, final["adapter"]),
    }
    sets = {"held-out questions, training databases": heldout, **other_sets(config, args)}
    verdicts = {
        set_name: {name: greedy_verdicts(config, path, examples, adapter_dir=adapter) for name, (path, adapter) in policies.items()}
        for set_name, examples in sets.items()
    }
    ray.shutdown()
    write_table(out, verdicts)


def other_sets(config: Config, args) -> dict[str, list]:
    """Unseen databases and Spider dev, from full Spider when it is present (skipped, with a log line, when not)."""
    from rl_sql.data.make_embedded_subset import SUBSET_DB_IDS
    from rl_sql.data.spider import SpiderNotFound, load_spider_dev, load_spider_split, resolve_spider_dir

    try:
        spider_dir = resolve_spider_dir(config.data.spider_dir)
    except SpiderNotFound as e:
        log.warning("no unseen-database or Spider dev rows: %s", e)
        return {}
    sets = {}
    if args.other_dbs > 0:
        unseen = [e for e in load_spider_split(spider_dir, "train") if e.db_id not in SUBSET_DB_IDS]
        sets["unseen databases (Spider train)"] = random.Random(config.data.seed).sample(unseen, min(args.other_dbs, len(unseen)))
    if args.dev >= 0:
        dev = load_spider_dev(spider_dir)
        sets["Spider dev"] = dev[: args.dev] if args.dev else dev
    return sets


def write_table(out: Path, verdicts: dict[str, dict[str, list[dict]]]) -> None:
    """comparison.md: accuracy with a 95% bootstrap CI per set and policy, then paired differences
    (GRPO minus each control) per set."""
    lines = ["| evaluation set | n | policy | execution accuracy | 95% CI |", "|---|---|---|---|---|"]
    diffs = ["| evaluation set | difference | value | 95% CI (paired bootstrap) |", "|---|---|---|---|"]
    for set_name, by_policy in verdicts.items():
        correct = {k: [r["correct"] for r in v] for k, v in by_policy.items()}
        for name, flags in correct.items():
            acc, lo, hi = bootstrap_ci(flags)
            lines.append(f"| {set_name} | {len(flags)} | {name} | {acc:.3f} | [{lo:.3f}, {hi:.3f}] |")
        start, control, grpo = list(correct)
        for other in (start, control):
            d, lo, hi = paired_difference_ci(correct[grpo], correct[other])
            diffs.append(f"| {set_name} | GRPO - {other} | {d:+.3f} | [{lo:+.3f}, {hi:+.3f}] |")
    table = "\n".join(lines + [""] + diffs)
    (out / "comparison.md").write_text(table + "\n")
    (out / "verdicts.json").write_text(json.dumps(verdicts, indent=1))
    print(table)


if __name__ == "__main__":
    main()
