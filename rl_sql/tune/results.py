"""What a sweep leaves in its output folder: the table (CSV and Markdown), the accuracy-vs-weights
plot, and ``best.yaml`` (the best trial's recipe).

Everything here works on plain ``TrialRow`` records, so it is independent of Ray Tune's
result objects (``sweep.py`` converts those).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import yaml

from rl_sql.config import Config, apply_override
from rl_sql.tune.space import TrialSpec

Status = Literal["COMPLETED", "EARLY_STOPPED", "INTERRUPTED", "ERROR", "NOT_RUN"]


@dataclass
class TrialRow:
    """One trial's outcome. ``accuracy`` is the last reported held-out execution accuracy."""

    index: int
    trial_id: str
    syntax_weight: float
    execution_weight: float
    semantic_weight: float
    learning_rate: float
    beta: float
    accuracy: float | None
    peak_accuracy: float | None
    runs_without_error: float | None
    steps: int
    reports: int
    status: Status
    error: str = ""
    path: str = ""

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def best_row(rows: list[TrialRow]) -> TrialRow | None:
    """The trial with the highest final accuracy; ties go to more steps, then more SQL that runs,
    then the lower index. Trials that failed or reported nothing are never chosen."""
    scored = [r for r in rows if r.status != "ERROR" and r.accuracy is not None]
    if not scored:
        return None
    return max(scored, key=lambda r: (r.accuracy, r.steps, r.runs_without_error or 0.0, -r.index))


def write_csv(rows: list[TrialRow], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TrialRow.columns())
        writer.writeheader()
        for row in sorted(rows, key=lambda r: r.index):
            writer.writerow(asdict(row))
    return path


def write_markdown(rows: list[TrialRow], path: Path, *, title: str, notes: list[str] | None = None) -> Path:
    best = best_row(rows)
    lines = [f"# {title}", ""]
    lines += [f"- {note}" for note in notes or []]
    if notes:
        lines.append("")
    lines += [
        "| trial | syntax | execution | semantic | lr | beta | accuracy | peak | runs w/o error | steps | status | error |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r.index):
        mark = " **(best)**" if best is not None and r.index == best.index else ""
        lines.append(
            f"| {r.index}{mark} | {r.syntax_weight:.3f} | {r.execution_weight:.3f} | {r.semantic_weight:.3f} "
            f"| {r.learning_rate:.3g} | {r.beta:.3g} | {_fmt(r.accuracy)} | {_fmt(r.peak_accuracy)} "
            f"| {_fmt(r.runs_without_error)} | {r.steps} | {r.status} | {_md_escape(r.error)} |"
        )
    lines.append("")
    if best is None:
        lines.append("No trial reported an accuracy: see the errors above.")
    else:
        lines.append(
            f"Best: trial {best.index}, weights (syntax, execution, semantic) = "
            f"({best.syntax_weight:.3f}, {best.execution_weight:.3f}, {best.semantic_weight:.3f}), "
            f"lr {best.learning_rate:.3g}, beta {best.beta:.3g}: held-out execution accuracy {_fmt(best.accuracy)} "
            f"after {best.steps} steps."
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def simplex_xy(syntax: float, execution: float, semantic: float) -> tuple[float, float]:
    """Barycentric -> 2D: syntax at (0, 0), execution at (1, 0), semantic at (1/2, sqrt(3)/2)."""
    total = syntax + execution + semantic
    e, m = execution / total, semantic / total
    return e + m / 2, m * math.sqrt(3) / 2


def plot_accuracy_vs_weights(rows: list[TrialRow], path: Path, *, title: str) -> Path:
    """Ternary scatter of the trials coloured by accuracy; failed trials as grey crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.8))
    h = math.sqrt(3) / 2
    ax.plot([0, 1, 0.5, 0], [0, 0, h, 0], color="black", linewidth=1)
    for frac in (0.25, 0.5, 0.75):  # guide lines of constant execution weight
        ax.plot(*zip(simplex_xy(1 - frac, frac, 0), simplex_xy(0, frac, 1 - frac)), color="0.85", linewidth=0.8)
    ax.text(-0.03, -0.05, "syntax", ha="center", va="top")
    ax.text(1.03, -0.05, "execution", ha="center", va="top")
    ax.text(0.5, h + 0.03, "semantic", ha="center", va="bottom")

    ok = [r for r in rows if r.accuracy is not None and r.status != "ERROR"]
    bad = [r for r in rows if r not in ok]
    if ok:
        xy = [simplex_xy(r.syntax_weight, r.execution_weight, r.semantic_weight) for r in ok]
        acc = [r.accuracy for r in ok]
        low, high = min(acc), max(acc)
        if high - low < 0.01:  # all (nearly) equal: a readable 0.1-wide scale around them
            low = max(0.0, low - 0.05)
            high = low + 0.1
        points = ax.scatter([p[0] for p in xy], [p[1] for p in xy], c=acc, cmap="viridis", s=140,
                            edgecolors="black", vmin=low, vmax=high, zorder=3)
        fig.colorbar(points, ax=ax, label="held-out execution accuracy", shrink=0.8)
        for r, (x, y) in zip(ok, xy):
            ax.annotate(f"{r.index}", (x, y), textcoords="offset points", xytext=(7, 5), fontsize=8)
    if bad:
        xy = [simplex_xy(r.syntax_weight, r.execution_weight, r.semantic_weight) for r in bad]
        ax.scatter([p[0] for p in xy], [p[1] for p in xy], marker="x", color="0.5", s=80, label="failed", zorder=3)
    best = best_row(rows)
    if best is not None:
        ax.scatter(*simplex_xy(best.syntax_weight, best.execution_weight, best.semantic_weight), marker="*",
                   s=420, facecolors="none", edgecolors="red", linewidths=1.5, zorder=4, label=f"best (trial {best.index})")
    if bad or best is not None:
        ax.legend(loc="upper right")
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.12, h + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def best_recipe(recipe: dict, base_overrides: list[str], spec: TrialSpec) -> dict:
    """The input recipe (as written, plus the command line's overrides) with the best trial's settings.

    Only the recipe's own keys and what the trial changed appear, so the result overrides
    only what differs from ``rl_sql/config.py``'s defaults, like the recipe it came from.
    Per-trial ``extra_overrides`` are probes, not tuned settings, and are left out.
    """
    data = yaml.safe_load(yaml.safe_dump(recipe))  # a deep copy of plain data
    tuned = TrialSpec(spec.index, *spec.weights, learning_rate=spec.learning_rate, beta=spec.beta)
    for item in [*base_overrides, *tuned.overrides()]:
        apply_override(data, item)
    return data


def write_best_yaml(recipe: dict, base_overrides: list[str], best: TrialRow, spec: TrialSpec, path: Path,
                    *, source: str) -> Path:
    """Write ``best.yaml`` and check that ``Config.load`` accepts it."""
    data = best_recipe(recipe, base_overrides, spec)
    header = (
        f"# Best trial of the reward-weight sweep in {source}: trial {best.index} ({best.trial_id}),\n"
        f"# held-out execution accuracy {_fmt(best.accuracy)} after {best.steps} GRPO steps.\n"
        "# The input recipe with the tuned reward weights (and lr / beta when tuned).\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    Config.load(path)  # fails loudly if the recipe does not validate
    return path


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
