"""The `rl-sql` command: train, sft, eval, tune."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from rl_sql.config import Config, ConfigError


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML recipe (e.g. jobs/tiny_grpo.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides of the recipe")


def train_parser(prog: str = "rl-sql train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="SFT warm start (if the recipe asks) then GRPO")
    _config_args(p)
    p.add_argument("--max-steps", type=int, default=None, help="stop after N GRPO steps")
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory (default: train.out_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in RUN_DIR")
    return p


def load_config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if getattr(args, "max_steps", None) is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    return Config.load(args.config, overrides)


def cmd_train(argv: list[str], prog: str = "rl-sql train") -> int:
    args = train_parser(prog).parse_args(argv)
    config = load_config(args)
    from rl_sql.train import run_training

    result = run_training(config, run_dir=args.out, resume=args.resume)
    from rl_sql.eval.report import dev_comparison

    print("\n".join(dev_comparison(result["run_dir"])))  # Spider dev before and after, when the run evaluated it
    print(json.dumps({"run_dir": result["run_dir"], "report": f"{result['run_dir']}/report.md", "saved": result["saved"]},
                     indent=2))
    return 0


def cmd_sft(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rl-sql sft", description="Supervised warm start on the same data")
    _config_args(p)
    p.add_argument("--out", default=None, help="output folder (default: sft.output_dir)")
    args = p.parse_args(argv)
    config = load_config(args)
    from rl_sql.models.sft import run_sft

    print(run_sft(config, out_dir=args.out))
    return 0


def cmd_tune(argv: list[str], prog: str = "rl-sql tune", default_config: str | None = None) -> int:
    """Ray Tune sweep over the reward weights (see rl_sql/tune/sweep.py); options in rl_sql/tune/command.py."""
    from rl_sql.tune.command import run

    return run(argv, prog, default_config=default_config)


def cmd_eval(argv: list[str]) -> int:
    """Execution accuracy on Spider dev or the held-out split (see rl_sql/eval/run.py)."""
    from rl_sql.eval.run import EvalInputError, run

    try:
        summary = run(argv)
    except (EvalInputError, FileNotFoundError) as exc:
        print(f"rl-sql eval: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("data", "n", "correct", "accuracy", "ci95", "skipped")}, indent=2))
    return 0


COMMANDS = {"train": cmd_train, "sft": cmd_sft, "tune": cmd_tune, "eval": cmd_eval}


def run_command(command, argv: list[str], **kwargs) -> int:
    """Run one command with console logging; a bad recipe or override is a one-line error (exit 2).
    The job entry points in jobs/ call this too."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return command(argv, **kwargs)
    except ConfigError as exc:
        print(f"{kwargs.get('prog', 'rl-sql')}: {exc}", file=sys.stderr)
        return 2


def train_job(recipe: str, prog: str, argv: list[str] | None = None) -> int:
    """A job entry point (jobs/*.py): `rl-sql train` with the job's own recipe unless --config is given."""
    argv = sys.argv[1:] if argv is None else argv
    if "--config" not in argv:
        argv = ["--config", recipe, *argv]
    return run_command(cmd_train, argv, prog=prog)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: rl-sql {{{','.join(COMMANDS)}}} ...  (rl-sql COMMAND --help for its options)", file=sys.stderr)
        return 2
    return run_command(COMMANDS[argv[0]], argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
