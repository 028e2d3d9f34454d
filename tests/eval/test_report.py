import json

import pytest

from rl_sql.eval.report import write_training_report


def test_report_has_tables_and_plots(tmp_path):
    records = [{"step": 0, "eval/exec_accuracy": 0.1, "eval/runs_without_error": 0.5, "eval/n": 20,
                "screen/prompts": 300.0, "screen/kept": 25.0, "screen/never_right": 270.0, "screen/always_right": 5.0,
                "eval/paraphrase_exec_accuracy": 0.3, "eval/paraphrase_reward_mean": 0.2,
                "eval/paraphrase_runs_without_error": 0.7, "eval/paraphrase_n": 40}]
    for step in range(1, 6):
        records.append({"step": step, "reward/mean": 0.1 * step, "reward/std": 0.2, "reward/execution": 0.05 * step,
                        "kl_divergence": 0.01 * step, "grpo/zero_variance_frac": 0.3, "completion/len_mean": 40.0,
                        "time/generate": 1.0, "time/update": 0.5, "time/step": 2.0})
    records.append({"step": 5, "eval/exec_accuracy": 0.2, "eval/reward_mean": 0.15, "eval/runs_without_error": 0.6,
                    "eval/sampled_exec_accuracy": 0.12, "eval/sampled_reward_mean": 0.3, "eval/sampled_pass_at_k": 0.25,
                    "eval/n": 20})
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    ids = ["a", "b", "c", "d"]
    verdicts = [{"step": 0, "set": "eval/", "ids": ids, "greedy": [0, 0, 1, 0], "sampled_": [0, 0.5, 0.5, 0]},
                {"step": 0, "set": "eval/paraphrase_", "ids": ids[:2], "greedy": [1, 0]},
                {"step": 5, "set": "eval/", "ids": ids, "greedy": [1, 0, 1, 1], "sampled_": [0.5, 0.5, 1, 0]}]
    (tmp_path / "eval_verdicts.jsonl").write_text("\n".join(json.dumps(v) for v in verdicts))
    report = write_training_report(tmp_path).read_text()
    held = report[: report.index("## Unseen rewordings")]
    assert "- greedy accuracy, step 5 minus step 0: +0.500 [" in held and "(95% paired bootstrap over 4 questions)" in held
    assert "- sampled accuracy, step 5 minus step 0: +0.250 [" in held
    assert "minus step" not in report[report.index("## Unseen rewordings"):]  # one evaluation: no change to show
    assert "| reward/mean | 0.1000 | 0.5000 |" in report
    assert "| step | accuracy | reward | runs without error | sampled accuracy | sampled reward | sampled pass@k | n |" in report
    assert "| 5 | 0.200 | 0.150 | 0.600 | 0.120 | 0.300 | 0.250 | 20 |" in report
    assert "| 0 | 0.100 | nan | 0.500 | nan | nan | nan | 20 |" in report  # a metric an evaluation lacks is shown as such
    assert "Prompt screen: 25 of 300 GRPO prompts kept (both right and wrong samples); 270 never right, 5 always right." in report
    rewordings = report[report.index("## Unseen rewordings"):]
    assert "| 0 | 0.300 | 0.200 | 0.700 | 40 |" in rewordings and "| 5 |" not in rewordings.split("## Plots")[0]
    assert (tmp_path / "paraphrase_accuracy.png").stat().st_size > 1000
    for png in ("reward.png", "heldout_accuracy.png", "kl.png", "zero_variance.png", "completion_length.png", "time_per_phase.png"):
        assert (tmp_path / png).stat().st_size > 1000, png
        assert f"]({png})" in report


def test_missing_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="training run directory"):
        write_training_report(tmp_path)


def _dev_verdicts(folder, rows):
    folder.mkdir(parents=True)
    folder.joinpath("verdicts.jsonl").write_text("".join(
        json.dumps({"id": f"spider-dev-{i}", "correct": error is None, "error": error, "hardness": hardness,
                    "gold_empty": i == 2}) + "\n"  # question 2's gold returns no rows
        for i, (error, hardness) in enumerate(rows)))


def test_spider_dev_first_and_last_paired_by_question(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 0, "dev/exec_accuracy": 0.25}) + "\n")
    before = [("no_sql", "easy"), ("no_sql", "easy"), ("schema", "medium"), (None, "medium"),
              ("wrong_result", "hard"), ("parse", "extra"), ("no_sql", "medium"), (None, "easy")]
    after = [(None, "easy"), ("wrong_result", "easy"), (None, "medium"), (None, "medium"),
             ("wrong_result", "hard"), ("parse", "extra"), ("schema", "medium"), ("schema", "easy")]
    _dev_verdicts(tmp_path / "dev_eval/step_000000", before)
    _dev_verdicts(tmp_path / "dev_eval/step_000007", after)  # a middle one would be ignored by the pairing
    report = write_training_report(tmp_path).read_text()
    dev = report[report.index("## Spider dev"):report.index("## Plots")]
    assert "| 0 | 0.250 | 2 | 8 | 0.286 | 2 | 7 |" in dev and "| 7 | 0.375 | 3 | 8 | 0.286 | 2 | 7 |" in dev
    assert "On the 7 questions with a non-empty gold result: **+0.000 [" in dev
    assert "Change, step 7 minus step 0: **+0.125 [" in dev and "over 8 questions" in dev
    assert "2 questions became right, 1 became wrong." in dev
    assert "| easy | 3 | 0.333 | 0.333 |" in dev and "| medium | 3 | 0.333 | 0.667 |" in dev
    assert "| right | 2 | 3 |" in dev and "| no_sql | 3 | 0 |" in dev and "| schema | 1 | 2 |" in dev
    assert "The 2 new right answers were, before: no_sql 1, schema 1" in dev
