"""The training report: ``report.md`` and PNG plots in a run directory, from ``metrics.jsonl``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rl_sql.eval.stats import paired_difference_ci  # noqa: E402

# plot file -> (title, [metric keys])
PLOTS = {
    "reward.png": ("Reward (mean, std and components)", ["reward/mean", "reward/std", "reward/syntax", "reward/execution", "reward/semantic"]),
    "heldout_accuracy.png": ("Held-out questions: accuracy, reward, SQL that runs", [
        "eval/exec_accuracy", "eval/reward_mean", "eval/runs_without_error",
        "eval/sampled_exec_accuracy", "eval/sampled_reward_mean", "eval/sampled_pass_at_k"]),
    "paraphrase_accuracy.png": ("Unseen rewordings of GRPO prompts: accuracy, reward, SQL that runs", [
        "eval/paraphrase_exec_accuracy", "eval/paraphrase_reward_mean", "eval/paraphrase_runs_without_error",
        "eval/paraphrase_sampled_exec_accuracy", "eval/paraphrase_sampled_reward_mean", "eval/paraphrase_sampled_pass_at_k"]),
    "dev_accuracy.png": ("Spider dev: greedy execution accuracy (official rules) and its error kinds", [
        "dev/exec_accuracy", "dev/error/no_sql", "dev/error/parse", "dev/error/schema", "dev/error/wrong_result"]),
    "train_exec_match.png": ("Training samples: execution match and SQL that runs", ["reward/exec_match", "sql/runs_frac"]),
    "kl.png": ("KL to the reference (k3)", ["kl_divergence"]),
    "zero_variance.png": ("Fraction of zero-variance groups", ["grpo/zero_variance_frac"]),
    "completion_length.png": ("Completion length (tokens)", ["completion/len_mean"]),
    "time_per_phase.png": ("Time per phase (s)", ["time/generate", "time/score", "time/update", "time/push", "time/parity"]),
}


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a training run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_verdicts(run_dir: str | Path) -> list[dict]:
    """Per-question verdicts of each held-out evaluation (``eval_verdicts.jsonl``; empty for older runs)."""
    path = Path(run_dir) / "eval_verdicts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in records if key in r]
    return [p[0] for p in points], [p[1] for p in points]


def write_training_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    lines = [f"# Training report: {run_dir.name}", ""]
    train = [r for r in records if "reward/mean" in r]
    evals = [r for r in records if "eval/exec_accuracy" in r]
    if train:
        last = train[-1]
        lines += [
            f"{len(train)} GRPO steps; last step {last['step']}.",
            "",
            "| metric | first step | last step |",
            "|---|---|---|",
        ]
        for key in ("reward/mean", "reward/std", "reward/exec_match", "sql/runs_frac", "kl_divergence",
                    "grpo/zero_variance_frac", "completion/len_mean", "time/step"):
            if key in last:
                lines.append(f"| {key} | {train[0].get(key, float('nan')):.4f} | {last[key]:.4f} |")
        lines.append("")
    screen = next((r for r in records if "screen/kept" in r), None)
    if screen:
        lines += [f"Prompt screen: {int(screen['screen/kept'])} of {int(screen['screen/prompts'])} GRPO prompts kept "
                  f"(both right and wrong samples); {int(screen['screen/never_right'])} never right, "
                  f"{int(screen['screen/always_right'])} always right.", ""]
    verdicts = read_verdicts(run_dir)
    lines += _eval_table(evals, "eval/", "Held-out questions (unseen, gold SQL nowhere in training)", verdicts)
    lines += _eval_table([r for r in records if "eval/paraphrase_exec_accuracy" in r], "eval/paraphrase_",
                         "Unseen rewordings of GRPO prompts (gold SQL never shown)", verdicts)
    lines += dev_comparison(run_dir)
    lines += ["## Plots", ""]
    for name, (title, keys) in PLOTS.items():
        drawn = _plot(run_dir / name, title, records, keys)
        if drawn:
            lines += [f"![{title}]({name})", ""]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    return report


def _eval_table(evals: list[dict], prefix: str, title: str, verdicts: list[dict] | None = None) -> list[str]:
    if not evals:
        return []
    columns = [("exec_accuracy", "accuracy"), ("reward_mean", "reward"), ("runs_without_error", "runs without error")]
    if any(f"{prefix}sampled_exec_accuracy" in r for r in evals):
        columns += [("sampled_exec_accuracy", "sampled accuracy"), ("sampled_reward_mean", "sampled reward")]
    if any(f"{prefix}sampled_pass_at_k" in r for r in evals):
        columns += [("sampled_pass_at_k", "sampled pass@k")]
    lines = [
        f"## {title} (greedy; sampled = at the rollout temperature)", "",
        "| step | " + " | ".join(name for _, name in columns) + " | n |",
        "|---|" + "---|" * len(columns) + "---|",
    ]
    for r in evals:
        cells = " | ".join(f"{r.get(prefix + key, float('nan')):.3f}" for key, _ in columns)
        lines.append(f"| {r['step']} | {cells} | {int(r.get(prefix + 'n', 0))} |")
    return [*lines, "", *_change_from_start([v for v in verdicts or [] if v["set"] == prefix])]


def _change_from_start(records: list[dict]) -> list[str]:
    """Last evaluation minus the first on the same questions, with a paired bootstrap 95% CI."""
    if len(records) < 2:
        return []
    first, last = records[0], records[-1]
    if first["ids"] != last["ids"]:
        return [f"(step {first['step']} and step {last['step']} evaluated different questions: no paired change)", ""]
    lines = []
    for kind, name in (("greedy", "greedy accuracy"), ("sampled_", "sampled accuracy")):
        if kind in first and kind in last:
            diff, low, high = paired_difference_ci(last[kind], first[kind])
            lines.append(f"- {name}, step {last['step']} minus step {first['step']}: {diff:+.3f} "
                         f"[{low:+.3f}, {high:+.3f}] (95% paired bootstrap over {len(first['ids'])} questions)")
    return [*lines, ""]


def _plot(path: Path, title: str, records: list[dict], keys: list[str]) -> bool:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    drawn = False
    for key in keys:
        steps, values = _series(records, key)
        if steps:
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
            drawn = True
    if drawn:
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn


def read_dev_evaluations(run_dir: str | Path) -> list[tuple[int, dict[str, dict]]]:
    """(step, {question id: verdict}) of each Spider dev evaluation in ``dev_eval/``, by step."""
    root = Path(run_dir) / "dev_eval"
    out = []
    for folder in sorted(root.glob("step_*")) if root.is_dir() else []:
        path = folder / "verdicts.jsonl"
        if path.is_file():
            verdicts = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            out.append((int(folder.name.split("_")[1]), {v["id"]: v for v in verdicts}))
    return out


def dev_comparison(run_dir: str | Path) -> list[str]:
    """Spider dev, first evaluation against the last on the same questions: accuracy with a paired
    bootstrap 95% CI, the change by hardness and by error kind, and where the new right answers came
    from (an answer with no SQL before is a format gain; one whose SQL failed or was wrong is an SQL gain)."""
    evals = read_dev_evaluations(run_dir)
    if not evals:
        return []
    lines = ["## Spider dev (greedy, official rules; databases never trained on)", "",
             "A question whose gold result is empty counts as right for any query that returns no rows (the",
             "official rule), so the accuracy over the questions with a non-empty gold result is shown too.", "",
             "| step | accuracy | correct | n | accuracy, non-empty gold | correct | n |", "|---|---|---|---|---|---|---|"]
    for step, verdicts in evals:
        right = sum(v["correct"] for v in verdicts.values())
        evidence = [v["correct"] for v in verdicts.values() if not v.get("gold_empty", False)]
        lines.append(f"| {step} | {right / len(verdicts):.3f} | {right} | {len(verdicts)} | "
                     f"{sum(evidence) / max(len(evidence), 1):.3f} | {sum(evidence)} | {len(evidence)} |")
    lines.append("")
    (s0, first), (s1, last) = evals[0], evals[-1]
    if len(evals) < 2 or set(first) != set(last):
        return lines
    ids = sorted(first)
    before, after = [first[i]["correct"] for i in ids], [last[i]["correct"] for i in ids]
    diff, low, high = paired_difference_ci(after, before, resamples=10_000)
    lines += [f"Change, step {s1} minus step {s0}: **{diff:+.3f} [{low:+.3f}, {high:+.3f}]** (95% paired bootstrap "
              f"over {len(ids)} questions, 10,000 resamples); {sum(a and not b for a, b in zip(after, before))} "
              f"questions became right, {sum(b and not a for a, b in zip(after, before))} became wrong."]
    solid = [i for i in ids if not first[i].get("gold_empty", False)]
    if solid:
        d2, low2, high2 = paired_difference_ci([last[i]["correct"] for i in solid], [first[i]["correct"] for i in solid],
                                               resamples=10_000)
        lines.append(f"On the {len(solid)} questions with a non-empty gold result: **{d2:+.3f} [{low2:+.3f}, {high2:+.3f}]**.")
    lines.append("")
    lines += ["| hardness | n | before | after |", "|---|---|---|---|"]
    for level in sorted({first[i]["hardness"] for i in ids}, key=_HARDNESS_ORDER.index):
        group = [i for i in ids if first[i]["hardness"] == level]
        lines.append(f"| {level} | {len(group)} | {sum(first[i]['correct'] for i in group) / len(group):.3f} | "
                     f"{sum(last[i]['correct'] for i in group) / len(group):.3f} |")
    before_kinds = Counter(v["error"] or "right" for v in first.values())
    after_kinds = Counter(v["error"] or "right" for v in last.values())
    lines += ["", "| answer | before | after |", "|---|---|---|"]
    for kind in sorted(before_kinds | after_kinds, key=_kind_order):
        lines.append(f"| {kind} | {before_kinds[kind]} | {after_kinds[kind]} |")
    gained = [first[i]["error"] for i in ids if last[i]["correct"] and not first[i]["correct"]]
    if gained:
        origin = ", ".join(f"{kind} {n}" for kind, n in sorted(Counter(gained).items(), key=lambda kv: -kv[1]))
        lines += ["", f"The {len(gained)} new right answers were, before: {origin} "
                      f"(no_sql: the format was learned; the others: the SQL itself got better)."]
    return [*lines, ""]


_HARDNESS_ORDER = ["easy", "medium", "hard", "extra", "unknown"]


def _kind_order(kind: str) -> tuple[int, str]:
    order = ["right", "wrong_result", "schema", "parse", "no_sql"]
    return (order.index(kind) if kind in order else len(order), kind)
