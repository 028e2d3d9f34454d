"""Where does what GRPO learns carry? Two measurements from one SFT policy.

1. pass@k of the starting policy on GRPO prompts and held-out questions (greedy, the mean
   accuracy of k samples, and the share of questions with at least one right sample, at
   T=0.7 and T=1). GRPO reinforces right answers the policy samples, so pass@k bounds what
   sharpening alone can add.
2. GRPO on a fixed pool: Spider pairs most gold queries with two paraphrased questions. From
   the GRPO (RL) split, one question of each of ``--pairs`` sampled pairs is a candidate; the
   candidates the start answers at least once in 16 samples form the pool GRPO trains on for
   ``train.max_steps`` steps. The evaluation set is the other question of each pair (its
   paraphrase twin): never trained on, its gold SQL never shown as a target. The pool's own
   accuracy is the training samples' execution match (``reward/exec_match`` in metrics.jsonl).

    python jobs/study_grpo_transfer.py --config jobs/tiny_grpo.yaml --out runs/transfer \
        [--skip-pass-at-k | --skip-pool] [--pairs 240] [--sample 200] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rl_sql.config import Config  # noqa: E402
from rl_sql.data import format_prompt  # noqa: E402
from rl_sql.data.loading import load_splits  # noqa: E402
from rl_sql.data.split import paraphrase_pairs  # noqa: E402
from rl_sql.engine.driver import GRPOTrainer  # noqa: E402
from rl_sql.engine.sampler import PromptSampler  # noqa: E402
from rl_sql.engine.signals import exec_match  # noqa: E402

KS = (1, 4, 8, 16)


def right_samples(trainer: GRPOTrainer, examples, n: int, **sampling) -> list[list[bool]]:
    prompts = [format_prompt(e, trainer.config.data.prompt_style, trainer.tokenizer) for e in examples]
    _, results, _ = trainer._generate_and_score(examples, prompts, n, **sampling)
    return [[exec_match(r) for r in results[i]] for i in range(len(examples))]


def pass_at_k_table(trainer: GRPOTrainer, sets: dict[str, list]) -> list[dict]:
    rows = []
    for name, examples in sets.items():
        greedy = right_samples(trainer, examples, 1, temperature=0.0)
        row = {"set": name, "n": len(examples), "greedy": sum(g[0] for g in greedy) / len(examples)}
        for temperature in (0.7, 1.0):
            right = right_samples(trainer, examples, max(KS), temperature=temperature)
            row[f"T{temperature}/mean"] = sum(map(sum, right)) / (max(KS) * len(right))
            for k in KS[1:]:
                row[f"T{temperature}/pass@{k}"] = sum(any(r[:k]) for r in right) / len(right)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main(argv: list[str]) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="jobs/tiny_grpo.yaml")
    p.add_argument("--out", required=True)
    p.add_argument("--pairs", type=int, default=240)
    p.add_argument("--sample", type=int, default=200, help="questions per set for pass@k")
    p.add_argument("--skip-pass-at-k", action="store_true")
    p.add_argument("--skip-pool", action="store_true", help="measure pass@k only")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    # the study picks its own pool and evaluation set: no prompt screen, no second held-out set
    fixed = ["train.screen_samples=0", "data.paraphrase_heldout=false"]
    config = Config.load(args.config, [*fixed, *args.overrides, f"train.out_dir={args.out}/grpo"])
    if not config.train.max_steps:
        raise SystemExit("set train.max_steps: the pool's GRPO run is a number of steps, not epochs of the GRPO split")
    _, rl, heldout, _ = load_splits(config.data)
    trainer = GRPOTrainer(config, config.model.name_or_path, config.train.out_dir)
    out: dict = {}
    try:
        if not args.skip_pass_at_k:
            rng = random.Random(0)
            out["pass_at_k"] = pass_at_k_table(trainer, {
                "grpo prompts": rng.sample(rl, min(args.sample, len(rl))),
                "held-out": heldout[: args.sample],
            })
        if args.skip_pool:
            return _write(args.out, out)
        pairs = paraphrase_pairs(rl)
        pairs = random.Random(1).sample(pairs, min(args.pairs, len(pairs)))
        right = right_samples(trainer, [a for a, _ in pairs], 16)
        kept = [pair for pair, r in zip(pairs, right) if any(r)]
        if not kept:
            raise SystemExit("no candidate was answered right in 16 samples: the start is too weak for this study")
        pool, twins = [a for a, _ in kept], [b for _, b in kept]
        print(f"pool: {len(pool)} of {len(pairs)} candidates; twins: {len(twins)}", flush=True)
        trainer.sampler = PromptSampler(pool, seed=config.train.seed)
        trainer.heldout = twins
        out["pool"], out["twins"] = len(pool), [h for h in trainer.fit() if "eval/exec_accuracy" in h]
        for h in out["twins"]:
            print("twins", json.dumps({k: round(v, 3) for k, v in h.items()}), flush=True)
    finally:
        trainer.shutdown()
    return _write(args.out, out)


def _write(folder: str, out: dict) -> dict:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / "transfer.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
