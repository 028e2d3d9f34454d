"""The longer CPU run: GRPO on SmolLM2-135M-Instruct for longer than `make train`, evaluated on
all of Spider dev, beside two controls on the same questions:

1. the starting model (the instruct model, zero-shot: the GRPO run's step-0 evaluation);
2. LoRA SFT on the gold SQL of the same training questions, for the wall-clock time GRPO trained
   (its steps, without the evaluations), same LoRA shape, chat prompts and targets in a ```sql block;
3. GRPO (jobs/smol_grpo.yaml with ``--steps`` steps).

Every policy answers greedily and is judged with the official rules (``rl-sql eval``'s path).
Writes ``summary.md`` and ``summary.json`` with accuracies, 95% bootstrap CIs and paired bootstrap
CIs of the differences, plus each policy's own outputs, under ``--out``.

    python jobs/smol_long.py [--steps 150] [--dev 972] [--out runs/smol_long] [key=value ...]

At about 70 s a step on a 2-core CPU, 150 steps, the SFT control and three evaluations of the 972
questions take about 3 hours.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rl_sql.config import Config  # noqa: E402
from rl_sql.eval.report import read_dev_evaluations, read_metrics  # noqa: E402
from rl_sql.eval.stats import bootstrap_ci, paired_difference_ci  # noqa: E402

RECIPE = Path(__file__).with_name("smol_grpo.yaml")
log = logging.getLogger("smol_long")


def sft_control(config: Config, seconds: float, out: Path, dev: int) -> dict[str, dict]:
    """LoRA SFT for ``seconds`` on the GRPO run's training questions, then its dev verdicts."""
    from rl_sql.eval.run import run as run_eval
    from rl_sql.models.sft import run_sft

    # GRPO's learning rate and whole prompts (the recipe's model length), so only the objective differs
    sft_config = config.model_copy(update={"sft": config.sft.model_copy(update={
        "epochs": 1000.0, "max_minutes": seconds / 60, "output_dir": str(out / "sft"),
        "learning_rate": config.learner.learning_rate, "seq_len": config.rollout.max_model_len})})
    policy = run_sft(sft_config)
    args = ["--data", "spider-dev", "--model", str(policy), "--out", str(out / "sft_eval"), "--config", str(RECIPE)]
    if dev < 972:
        args += ["--limit", str(dev)]
    run_eval([*args, "model.dtype=float32"])  # as the GRPO run evaluates: merged weights in float32
    verdicts = [json.loads(line) for line in (out / "sft_eval/verdicts.jsonl").read_text().splitlines()]
    return {v["id"]: v for v in verdicts}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--dev", type=int, default=972, help="Spider dev questions evaluated (972 = all with a database)")
    p.add_argument("--out", default="runs/smol_long")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    config = Config.load(RECIPE, [f"train.max_steps={args.steps}", f"train.dev_eval_examples={args.dev}",
                                  "train.eval_every=0", f"train.checkpoint_every={max(args.steps // 5, 1)}",
                                  f"train.out_dir={out / 'grpo'}", *args.overrides])
    from rl_sql.train import run_training

    run_training(config, run_dir=str(out / "grpo"))
    evaluations = read_dev_evaluations(out / "grpo")
    (_, start), (_, grpo) = evaluations[0], evaluations[-1]
    grpo_seconds = sum(r["time/step"] for r in read_metrics(out / "grpo") if "time/step" in r)
    sft = sft_control(config, grpo_seconds, out, args.dev)

    ids = sorted(set(start) & set(grpo) & set(sft))
    policies = {"starting model (zero-shot)": start, f"LoRA SFT, {grpo_seconds / 60:.0f} min": sft,
                f"GRPO, {args.steps} steps ({grpo_seconds / 60:.0f} min)": grpo}
    rows, summary = [], {"n": len(ids), "grpo_seconds": grpo_seconds, "policies": {}, "differences": {}}
    for name, verdicts in policies.items():
        acc, low, high = bootstrap_ci([verdicts[i]["correct"] for i in ids], resamples=10_000)
        summary["policies"][name] = {"accuracy": acc, "ci95": [low, high]}
        rows.append(f"| {name} | {acc:.3f} [{low:.3f}, {high:.3f}] | {sum(verdicts[i]['correct'] for i in ids)} |")
    names = list(policies)
    diffs = []
    for a, b in ((names[2], names[0]), (names[1], names[0]), (names[2], names[1])):
        d, low, high = paired_difference_ci([policies[a][i]["correct"] for i in ids],
                                            [policies[b][i]["correct"] for i in ids], resamples=10_000)
        summary["differences"][f"{a} minus {b}"] = {"difference": d, "ci95": [low, high]}
        diffs.append(f"- {a} minus {b}: {d:+.3f} [{low:+.3f}, {high:+.3f}]")
    text = "\n".join([f"# Spider dev, {len(ids)} questions (greedy, official rules)", "",
                      "| policy | accuracy [95% CI] | right |", "|---|---|---|", *rows, "",
                      "Paired bootstrap 95% CIs (10,000 resamples):", "", *diffs, ""])
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
