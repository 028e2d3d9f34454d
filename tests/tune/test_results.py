"""The sweep's outputs from trial rows: table, plot, best trial and best.yaml."""

import csv
import math

import pytest
import yaml

from rl_sql.config import Config
from rl_sql.tune.results import (
    TrialRow,
    best_recipe,
    best_row,
    plot_accuracy_vs_weights,
    simplex_xy,
    write_best_yaml,
    write_csv,
    write_markdown,
)
from rl_sql.tune.space import TrialSpec

RECIPE = "jobs/tiny_grpo.yaml"


def _row(index, weights, accuracy, *, steps=4, status="COMPLETED", runs=0.5, error=""):
    return TrialRow(index=index, trial_id=f"t{index}", syntax_weight=weights[0], execution_weight=weights[1],
                    semantic_weight=weights[2], learning_rate=5e-4, beta=0.04, accuracy=accuracy,
                    peak_accuracy=accuracy, runs_without_error=runs, steps=steps, reports=2, status=status,
                    error=error)


ROWS = [
    _row(0, (0.2, 0.6, 0.2), 0.25),
    _row(1, (0.1, 0.1, 0.8), None, steps=0, status="ERROR", runs=None, error="ValueError: lora.r=1024 is | larger"),
    _row(2, (0.5, 0.3, 0.2), 0.375),
    _row(3, (0.0, 1.0, 0.0), 0.375, steps=2, status="EARLY_STOPPED"),
]


def test_best_is_the_highest_final_accuracy_ties_to_more_steps_errors_never():
    assert best_row(ROWS).index == 2
    assert best_row([ROWS[1]]) is None
    tie = [_row(0, (1, 0, 0), 0.5, runs=0.2), _row(1, (0, 1, 0), 0.5, runs=0.9)]
    assert best_row(tie).index == 1  # same accuracy and steps: more SQL that runs wins


def test_csv_has_one_row_per_trial_with_status_and_error(tmp_path):
    path = write_csv(list(reversed(ROWS)), tmp_path / "results.csv")
    rows = list(csv.DictReader(open(path)))
    assert [r["index"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[1]["status"] == "ERROR" and "lora.r=1024" in rows[1]["error"]
    assert rows[1]["accuracy"] == "" and rows[2]["accuracy"] == "0.375"
    assert float(rows[0]["execution_weight"]) == 0.6


def test_markdown_marks_the_best_and_escapes_errors(tmp_path):
    text = write_markdown(ROWS, tmp_path / "results.md", title="sweep", notes=["n"]).read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(ROWS)
    assert "| 2 **(best)** |" in text
    assert "is \\| larger" in text  # a '|' in an error does not break the table
    assert "Best: trial 2" in text


def test_simplex_projection_puts_corners_on_the_triangle():
    assert simplex_xy(1, 0, 0) == (0.0, 0.0)
    assert simplex_xy(0, 1, 0) == (1.0, 0.0)
    x, y = simplex_xy(0, 0, 1)
    assert (x, y) == (0.5, pytest.approx(math.sqrt(3) / 2))
    assert simplex_xy(2, 2, 2) == pytest.approx((0.5, math.sqrt(3) / 6))


def test_plot_is_a_png(tmp_path):
    path = plot_accuracy_vs_weights(ROWS, tmp_path / "p.png", title="sweep")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_best_recipe_keeps_the_recipe_and_changes_only_what_the_trial_tuned(tmp_path):
    recipe = yaml.safe_load(open(RECIPE))
    original = yaml.safe_load(open(RECIPE))
    spec = TrialSpec(2, 0.5, 0.3, 0.2, learning_rate=1e-3, extra_overrides=("lora.r=1024",))
    data = best_recipe(recipe, ["train.max_steps=7"], spec)
    assert data["reward"] == {**recipe["reward"], "syntax_weight": 0.5, "execution_weight": 0.3, "semantic_weight": 0.2}
    assert data["learner"]["learning_rate"] == 1e-3
    assert data["grpo"] == recipe["grpo"]  # beta not tuned: untouched
    assert data["lora"]["r"] == recipe["lora"]["r"]  # a probe override is not a tuned setting
    assert data["train"]["max_steps"] == 7  # the command line's overrides stay
    assert set(data) == set(recipe)  # no section the recipe did not have
    assert recipe == original  # the input is not modified

    path = write_best_yaml(recipe, ["train.max_steps=7"], ROWS[2], spec, tmp_path / "best.yaml", source="x")
    loaded = Config.load(path)
    assert (loaded.reward.syntax_weight, loaded.reward.execution_weight, loaded.reward.semantic_weight) == spec.weights
    assert loaded.learner.learning_rate == 1e-3
    assert loaded.model.scratch.hidden_size == Config.load(RECIPE).model.scratch.hidden_size
