"""Command-line options of `rl-sql tune` (and jobs/tune_reward_weights.py)."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from rl_sql.config import Config


def tune_parser(prog: str = "rl-sql tune", *, config_required: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Ray Tune sweep over the reward weights (syntax, execution, semantic): short GRPO runs "
                    "from one SFT policy, compared on held-out execution accuracy, ASHA early stopping",
    )
    p.add_argument("--config", required=config_required, help="YAML recipe (e.g. jobs/tiny_grpo.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides of the recipe (every trial)")
    p.add_argument("--num-samples", type=int, default=6,
                   help="trials; with --search grid, the smallest simplex lattice with at least this many points "
                        "of non-zero execution weight")
    p.add_argument("--max-steps", type=int, default=10, help="GRPO steps per trial")
    p.add_argument("--eval-every", type=int, default=None,
                   help="evaluate, report to Tune and checkpoint every N steps (default: ~4 reports per trial)")
    p.add_argument("--out", default="runs/tune", help="sweep folder: Tune's experiment, results.*, plot, best.yaml")
    p.add_argument("--search", choices=["dirichlet", "grid"], default="dirichlet")
    p.add_argument("--alpha", type=float, default=1.0, help="Dirichlet concentration (1 = uniform on the simplex)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trial generator")
    p.add_argument("--tune-lr", action="store_true", help="also tune learner.learning_rate (log-uniform)")
    p.add_argument("--lr-range", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                   help="learning-rate range (default: the recipe's lr / 4 .. x 4)")
    p.add_argument("--tune-beta", action="store_true", help="also tune grpo.beta, the KL coefficient (uniform)")
    p.add_argument("--beta-range", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                   help="beta range (default: 0 .. max(0.1, 2 x the recipe's beta))")
    p.add_argument("--grace-period", type=int, default=1, help="ASHA: reports before a trial can be stopped")
    p.add_argument("--reduction-factor", type=float, default=2.0, help="ASHA: keep the top 1/N at each rung")
    p.add_argument("--trial-override", action="append", default=[], metavar="INDEX:key.sub=value",
                   help="an override for one trial only (repeatable); left out of best.yaml")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out (its stored recipe and options; errored trials re-run)")
    return p


def run(argv: list[str], prog: str = "rl-sql tune", *, default_config: str | None = None) -> int:
    args = tune_parser(prog, config_required=default_config is None).parse_args(argv)
    config_path = args.config or default_config
    from rl_sql.tune.sweep import SweepOptions, run_sweep

    base = Config.load(config_path, args.overrides)
    lr_range = tuple(args.lr_range) if args.lr_range else None
    if args.tune_lr and lr_range is None:
        lr = base.learner.learning_rate
        lr_range = (lr / 4, lr * 4)
    beta_range = tuple(args.beta_range) if args.beta_range else None
    if args.tune_beta and beta_range is None:
        beta_range = (0.0, max(0.1, 2 * base.grpo.beta))
    options = SweepOptions(
        num_samples=args.num_samples,
        max_steps=args.max_steps,
        eval_every=args.eval_every,
        search=args.search,
        alpha=args.alpha,
        seed=args.seed,
        lr_range=lr_range if (args.tune_lr or args.lr_range) else None,
        beta_range=beta_range if (args.tune_beta or args.beta_range) else None,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        extra_overrides=_trial_overrides(args.trial_override),
    )
    result = run_sweep(config_path, args.overrides, options, args.out, resume=args.resume)
    best = result.best
    print(json.dumps({
        "out_dir": str(result.out_dir),
        "trials": dict(Counter(r.status for r in result.rows)),
        "best": None if best is None else {
            "trial": best.index, "accuracy": best.accuracy, "steps": best.steps,
            "weights": {"syntax": best.syntax_weight, "execution": best.execution_weight,
                        "semantic": best.semantic_weight},
            "learning_rate": best.learning_rate, "beta": best.beta,
        },
        "files": {k: str(v) for k, v in result.files.items()},
    }, indent=2))
    return 0 if best is not None else 1


def _trial_overrides(items: list[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for item in items:
        index, sep, override = item.partition(":")
        if not sep or not index.strip().isdigit() or "=" not in override:
            raise SystemExit(f"--trial-override {item!r}: expected INDEX:key.sub=value, e.g. 1:rollout.max_model_len=64")
        out.setdefault(int(index), []).append(override)
    return out
