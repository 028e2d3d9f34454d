"""Ray Tune sweeps over the reward weights: a real sweep of tiny GRPO trials on a local Ray
cluster (one trial raising inside the engine), and the sweep's helpers."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
import yaml
from tiny_run import tiny_overrides

from rl_sql.config import Config
from rl_sql.engine import checkpoint
from rl_sql.engine.placement import PlacementError, trial_bundles
from rl_sql.tune.sweep import SweepOptions, max_concurrent_trials, restore_run_dir, run_sweep, short_error

RECIPE = "jobs/tiny_grpo.yaml"
ROOT = Path(__file__).resolve().parents[2]


def test_trials_fit_one_at_a_time_on_two_cpus_and_a_too_small_cluster_is_an_error():
    bundles = [{"CPU": 0.25}, {"CPU": 0.5}, {"CPU": 0.5}, {"CPU": 0.5}]  # trial_bundles of the tiny recipe
    assert max_concurrent_trials({"CPU": 2.0}, bundles) == 1
    assert max_concurrent_trials({"CPU": 8.0, "GPU": 0.0}, bundles) == 4
    gpu = [{"CPU": 0.25}, {"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}, {"CPU": 0.5}]
    assert max_concurrent_trials({"CPU": 64.0, "GPU": 8.0}, gpu) == 4
    with pytest.raises(PlacementError, match="needs 2 GPU"):
        max_concurrent_trials({"CPU": 64.0, "GPU": 1.0}, gpu)
    with pytest.raises(PlacementError, match="needs 1.75 CPU"):
        max_concurrent_trials({"CPU": 1.0}, bundles)


def _engine_checkpoint(run_dir: Path, step: int) -> Path:
    ckpt = checkpoint.step_dir(run_dir, step)
    (ckpt / "learner").mkdir(parents=True)
    (ckpt / "learner" / "weights.bin").write_bytes(bytes([step]) * 16)
    checkpoint.save_state(ckpt, step=step, sampler_state={"consumed": 4 * step})
    return ckpt


def test_restore_puts_tunes_checkpoint_back_and_drops_newer_engine_checkpoints(tmp_path):
    tune_copy = _engine_checkpoint(tmp_path / "tune_storage", 2)
    run_dir = tmp_path / "run"
    _engine_checkpoint(run_dir, 4)  # written after Tune's last report
    assert restore_run_dir(run_dir, tune_copy) == 2
    assert checkpoint.latest(run_dir) == checkpoint.step_dir(run_dir, 2)
    assert (checkpoint.step_dir(run_dir, 2) / "learner" / "weights.bin").read_bytes() == bytes([2]) * 16
    assert not checkpoint.step_dir(run_dir, 4).exists()
    # the run dir already holds that checkpoint (same node): kept as it is
    assert restore_run_dir(run_dir, checkpoint.step_dir(run_dir, 2)) == 2
    with pytest.raises(FileNotFoundError, match="not an engine checkpoint"):
        restore_run_dir(run_dir, tmp_path)


def test_short_error_finds_the_innermost_error_line():
    wrapped = RuntimeError(
        "Failure # 1 (occurred at 2026-11-25)\nray::ImplicitFunc.train()\n  File \"x.py\", line 3\n"
        "ray.exceptions.ActorDiedError: The actor died because of an error raised in its creation task\n"
        "    raise ValueError(...)\nValueError: lora.r=1024 is larger than vLLM's largest LoRA rank 512; lower lora.r\n"
    )
    assert short_error(wrapped) == "ValueError: lora.r=1024 is larger than vLLM's largest LoRA rank 512; lower lora.r"
    assert short_error(KeyError("x")) == "KeyError: 'x'"


@pytest.mark.slow
def test_sweep_of_tiny_trials_writes_table_plot_best_and_survives_a_failing_trial(tmp_path):
    overrides = [*tiny_overrides(tmp_path), "train.parity_every=0"]
    options = SweepOptions(
        num_samples=3, max_steps=2, eval_every=1, seed=0, grace_period=1,
        # a setting the engine cannot run (prompts of up to 512 tokens in a 64-token context), in the
        # middle trial only: the rollout worker fails after the trial's learner is up, so the next
        # trial also shows that nothing leaked
        extra_overrides={1: ["rollout.max_model_len=64"]},
    )
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        assert max_concurrent_trials(ray.cluster_resources(), trial_bundles(Config.load(RECIPE, overrides))) == 1
        result = run_sweep(RECIPE, overrides, options, tmp_path / "sweep")
    finally:
        ray.shutdown()

    out = tmp_path / "sweep"
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["index"] for r in rows] == ["0", "1", "2"]
    failed, ok = rows[1], [rows[0], rows[2]]
    assert failed["status"] == "ERROR", failed
    assert "max_model_len" in failed["error"] or "maximum model length" in failed["error"], failed
    for row in ok:
        assert row["status"] in ("COMPLETED", "EARLY_STOPPED"), row
        assert 0.0 <= float(row["accuracy"]) <= 1.0
        assert 1 <= int(row["steps"]) <= 2
        weights = [float(row[k]) for k in ("syntax_weight", "execution_weight", "semantic_weight")]
        assert sum(weights) == pytest.approx(1.0)
    assert rows[0]["status"] == "COMPLETED"  # the first trial is never stopped by ASHA

    # each trial ran its own GRPO run with its weights, from the one SFT policy
    for row in ok:
        trial_config = yaml.safe_load(open(Path(row["path"]) / "grpo" / "config.yaml"))
        assert trial_config["reward"]["execution_weight"] == float(row["execution_weight"])
        assert trial_config["train"]["max_steps"] == 2
        assert (Path(row["path"]) / "grpo" / "metrics.jsonl").is_file()
    assert len(list(tmp_path.rglob("sft_metrics.json"))) == 1

    # one trial at a time on 2 CPUs: the trials' [start, last report] intervals do not overlap
    spans = []
    for row in ok:
        reports = [json.loads(line) for line in open(Path(row["path"]) / "result.json")]
        spans.append((reports[0]["trial/started_at"], reports[-1]["trial/reported_at"]))
    spans.sort()
    assert spans[0][1] <= spans[1][0]
    assert result.max_concurrent_trials == 1

    md = (out / "results.md").read_text()
    assert md.count("\n| ") == 1 + 3 and "ERROR" in md
    assert (out / "accuracy_vs_weights.png").read_bytes()[:4] == b"\x89PNG"
    best = Config.load(out / "best.yaml")
    chosen = max(ok, key=lambda r: (float(r["accuracy"]), int(r["steps"]), float(r["runs_without_error"] or 0),
                                    -int(r["index"])))
    assert best.reward.execution_weight == float(chosen["execution_weight"])
    assert best.reward.syntax_weight == float(chosen["syntax_weight"])
    assert best.rollout.max_model_len == Config.load(RECIPE, overrides).rollout.max_model_len  # probes stay out
    assert result.best is not None and result.best.index == int(chosen["index"])


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_its_trial_from_the_tune_checkpoint(tmp_path):
    """`jobs/tune_reward_weights.py` stopped by Ctrl+C after the trial's first report, then `--resume`:
    the trial's GRPO run continues from Tune's checkpoint instead of starting over."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "jobs/tune_reward_weights.py", "--config", RECIPE, "--num-samples", "1", "--max-steps", "3",
           "--eval-every", "1", "--out", str(out), *tiny_overrides(tmp_path), "train.parity_every=0"]
    env = {**os.environ, "RAY_ADDRESS": ""}  # a local Ray instance of the job's own, stopped when it exits
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(tmp_path / "first.log", "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while not list(out.glob("tune/trial_000_*/result.json")) or not _lines(out.glob("tune/trial_000_*/result.json")):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-4000:]
            assert time.time() < deadline, "no report from the trial within 600 s"
            time.sleep(1)
        first.send_signal(signal.SIGINT)  # Tune saves the experiment and stops
        assert first.wait(timeout=180) in (0, 1), (tmp_path / "first.log").read_text()[-4000:]
    finally:
        if first.poll() is None:  # SIGTERM: the driver stops the local Ray instance it started
            first.terminate()
            try:
                first.wait(timeout=60)
            except subprocess.TimeoutExpired:
                first.kill()
    interrupted = list(csv.DictReader(open(out / "results.csv")))[0]
    assert interrupted["status"] == "INTERRUPTED", interrupted
    stopped_at = int(interrupted["steps"])
    assert 1 <= stopped_at < 3

    resumed = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    row = list(csv.DictReader(open(out / "results.csv")))[0]
    assert row["status"] == "COMPLETED" and int(row["steps"]) == 3, row
    # the trial's run dir (synced from the resumed trial's working dir) logs only the steps after
    # Tune's checkpoint: a trial that started over would log step 1 again
    steps = [json.loads(line)["step"] for line in open(Path(row["path"]) / "grpo" / "metrics.jsonl")]
    assert steps and 2 <= steps[0] <= stopped_at + 1, f"the trial started over instead of resuming: steps {steps}"
    assert steps[-1] == 3
    assert Config.load(out / "best.yaml").reward.execution_weight == float(row["execution_weight"])


def _lines(paths) -> int:
    return sum(len(Path(p).read_text().splitlines()) for p in paths)
