"""Ray Tune sweeps over the reward weights (syntax, execution, semantic), optionally lr and KL beta.

The sweep, in order:

1. join the cluster (``cluster.address`` / RAY_ADDRESS / a new local one) and compute the
   starting policy ONCE (``policy_for``: the cached SFT policy, or the pretrained model);
   every trial starts from that folder, so it must be on storage every node sees;
2. decide every trial up front (``space.make_trials``: seeded Dirichlet draws or a simplex grid);
3. run each trial as a short GRPO run of the engine (``GRPOTrainer``) inside its own
   placement group (``trial_bundles``: the trial driver, learner and rollout workers, reward
   actors), reporting held-out execution accuracy every ``eval_every`` steps, never the reward
   (which depends on the weights being compared), with the trainer's checkpoint attached;
4. ASHA stops trials whose accuracy falls behind at a rung (``training_iteration`` = reports);
5. write ``results.csv``, ``results.md``, ``accuracy_vs_weights.png`` and ``best.yaml``.

A trial that raises is recorded as ERROR with its error and the sweep goes on. ``resume``
restores the experiment (``Tuner.restore``), re-running errored trials from their last
checkpoint; a restored trial resumes its GRPO run from the Tune checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from rl_sql.config import Config
from rl_sql.engine import checkpoint
from rl_sql.engine.placement import PlacementError, connect, trial_bundles
from rl_sql.tune.results import (
    TrialRow,
    best_row,
    plot_accuracy_vs_weights,
    write_best_yaml,
    write_csv,
    write_markdown,
)
from rl_sql.tune.space import SearchKind, TrialSpec, make_trials

log = logging.getLogger(__name__)

METRIC = "eval/exec_accuracy"
EXPERIMENT = "tune"
STATE_FILE = "sweep.json"


@dataclass
class SweepOptions:
    """How to sweep (the recipe itself is the run's Config)."""

    num_samples: int = 6
    """Trials (Dirichlet draws); for ``grid``, the smallest simplex lattice with at least this many
    points of non-zero execution weight (see space.py)."""
    max_steps: int = 10
    """GRPO steps per trial."""
    eval_every: int | None = None
    """Held-out evaluation + report + checkpoint every N steps (None: about 4 reports per trial)."""
    search: SearchKind = "dirichlet"
    alpha: float = 1.0
    """Dirichlet concentration (1 = uniform on the simplex)."""
    seed: int = 0
    lr_range: tuple[float, float] | None = None
    """Log-uniform learning-rate range to tune (None = keep the recipe's learner.learning_rate)."""
    beta_range: tuple[float, float] | None = None
    """Uniform KL-beta range to tune (None = keep the recipe's grpo.beta)."""
    grace_period: int = 1
    """ASHA: reports a trial always gets before it can be stopped."""
    reduction_factor: float = 2.0
    """ASHA: keep the top 1/reduction_factor of trials at each rung."""
    extra_overrides: dict[int, list[str]] = field(default_factory=dict)
    """Overrides for single trials by index (probes; left out of best.yaml)."""

    def reports_every(self) -> int:
        return self.eval_every or max(1, math.ceil(self.max_steps / 4))

    def max_reports(self) -> int:
        return math.ceil(self.max_steps / self.reports_every())


@dataclass
class SweepResult:
    out_dir: Path
    rows: list[TrialRow]
    best: TrialRow | None
    max_concurrent_trials: int
    files: dict[str, Path]


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares, shipped once through the object store (``tune.with_parameters``)."""

    recipe_yaml: str
    """The sweep's base Config as YAML (paths made absolute)."""
    policy_path: str
    specs: tuple[TrialSpec, ...]
    max_steps: int
    eval_every: int

    def trial_config(self, spec: TrialSpec, run_dir: Path) -> Config:
        """The trial's Config: base recipe, the sweep's fixed settings, then the trial's overrides."""
        recipe = run_dir / "base_recipe.yaml"
        recipe.write_text(self.recipe_yaml)
        fixed = [
            f"train.max_steps={self.max_steps}",
            f"train.eval_every={self.eval_every}",
            f"train.checkpoint_every={self.eval_every}",
            "logging.progress_bar=false",
            f"cluster.actor_name_prefix=trial{spec.index}-",
        ]
        return Config.load(recipe, [*fixed, *spec.overrides()])


# ---------------------------------------------------------------------------- the trial
def grpo_trial(trial_config: dict, setup: TrialSetup) -> None:
    """One Tune trial: a short GRPO run reporting held-out execution accuracy with a checkpoint.

    The run dir is the trial's own working directory (Tune syncs it to the sweep's storage);
    a restored trial starts from the Tune checkpoint, not from whatever that directory holds.
    """
    started = time.time()
    spec = setup.specs[int(trial_config["index"])]
    run_dir = Path(tune.get_context().get_trial_dir()) / "grpo"
    run_dir.mkdir(parents=True, exist_ok=True)
    config = setup.trial_config(spec, run_dir)
    resume = False
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as ckpt_dir:
            step = restore_run_dir(run_dir, Path(ckpt_dir))
        log.info("trial %d: resuming its GRPO run from the Tune checkpoint of step %d", spec.index, step)
        resume = True

    from rl_sql.engine.driver import GRPOTrainer

    trainer = GRPOTrainer(config, setup.policy_path, run_dir, resume=resume)
    try:
        if not trainer.heldout:
            raise ValueError("the recipe holds out no examples (data.heldout_fraction / train.eval_examples): "
                             "a sweep needs held-out execution accuracy to compare trials")
        while trainer.step < trainer.total_steps:
            metrics = trainer.train_step()
            if METRIC not in metrics and trainer.step == trainer.total_steps:
                metrics.update(trainer.evaluate())
            if METRIC in metrics:
                ckpt = _checkpoint_at_step(trainer)
                tune.report(_report(metrics, trainer.step, started), checkpoint=tune.Checkpoint.from_directory(ckpt))
    finally:
        trainer.shutdown()


def restore_run_dir(run_dir: Path, ckpt_dir: Path) -> int:
    """Put a Tune checkpoint (one engine checkpoint folder) back as the run's newest checkpoint.

    Engine checkpoints newer than it (written after the last report) are removed, so the
    GRPO run resumes exactly where Tune's record of the trial ends. Returns its step.
    """
    state_file = ckpt_dir / checkpoint.STATE_FILE
    if not state_file.is_file():
        raise FileNotFoundError(f"{ckpt_dir} is not an engine checkpoint (no {checkpoint.STATE_FILE})")
    step = int(json.loads(state_file.read_text())["step"])
    target = checkpoint.step_dir(run_dir, step)
    for existing in (run_dir / "checkpoints").glob("step_*"):
        if _step_of(existing) > step or (existing == target and not (existing / checkpoint.STATE_FILE).is_file()):
            shutil.rmtree(existing)
    if not target.exists():
        shutil.copytree(ckpt_dir, target)
    return step


def _checkpoint_at_step(trainer) -> Path:
    """The engine checkpoint of the trainer's current step (saved now if the step did not save one)."""
    latest = checkpoint.latest(trainer.run_dir)
    if latest is not None and _step_of(latest) == trainer.step:
        return latest
    return trainer.save_checkpoint()


def _step_of(ckpt: Path) -> int:
    return int(ckpt.name.removeprefix("step_"))


def _report(metrics: dict[str, float], step: int, started: float) -> dict[str, float]:
    keep = ("eval/", "reward/", "kl_divergence", "loss", "grpo/zero_variance_frac", "time/step")
    out = {k: float(v) for k, v in metrics.items() if k.startswith(keep)}
    out["grpo/step"] = float(step)
    out["trial/started_at"] = started
    out["trial/reported_at"] = time.time()
    return out


def _trial_dirname(trial) -> str:
    return f"trial_{int(trial.config['index']):03d}_{trial.trial_id}"


# ---------------------------------------------------------------------------- the sweep
def max_concurrent_trials(cluster: dict[str, float], bundles: list[dict[str, float]]) -> int:
    """How many trials of these bundles the cluster holds at once (>= 1), or PlacementError."""
    need: dict[str, float] = {}
    for bundle in bundles:
        for key, value in bundle.items():
            need[key] = need.get(key, 0.0) + float(value)
    fits = []
    for key, value in need.items():
        if value <= 0:
            continue
        have = float(cluster.get(key, 0.0))
        if have + 1e-9 < value:
            raise PlacementError(
                f"one trial needs {value:g} {key} ({len(bundles)} bundles {bundles}) but the cluster has {have:g}: "
                "lower learner.num_workers / rollout.num_workers / cluster.cpus_per_*_worker / "
                "cluster.num_reward_actors, or add nodes"
            )
        fits.append(int(math.floor(have / value + 1e-9)))
    return max(1, min(fits)) if fits else 1


def run_sweep(
    config_path: str | Path,
    overrides: list[str],
    options: SweepOptions,
    out_dir: str | Path,
    *,
    resume: bool = False,
) -> SweepResult:
    """Run (or, with ``resume``, continue) a sweep; write the table, the plot and best.yaml to ``out_dir``."""
    out = Path(out_dir).resolve()
    if resume:
        config_path, overrides, options = _load_state(out, config_path, overrides)
    config = Config.load(config_path, overrides)
    recipe = yaml.safe_load(Path(config_path).read_text()) or {}
    specs = make_trials(
        options.search, options.num_samples, seed=options.seed, alpha=options.alpha,
        lr_range=options.lr_range, beta_range=options.beta_range, extra_overrides=options.extra_overrides,
    )
    out.mkdir(parents=True, exist_ok=True)
    if not resume and (out / EXPERIMENT).exists():
        raise FileExistsError(f"{out / EXPERIMENT} holds a sweep already: pass --resume to continue it, "
                              "or choose another --out")

    connect(config)
    from rl_sql.train import policy_for

    policy = policy_for(config)  # once, in the driver: trials never retrain SFT
    bundles = trial_bundles(config)
    # trials name their actors apart (cluster.actor_name_prefix): the cluster's resources alone decide
    concurrency = max_concurrent_trials(ray.cluster_resources(), bundles)
    log.info("sweep: %d trials of %d steps, %s per trial; the cluster fits %d at once",
             len(specs), options.max_steps, bundles, concurrency)
    _save_state(out, config_path, overrides, options, specs, policy)

    setup = TrialSetup(
        recipe_yaml=_with_absolute_paths(config).to_yaml(),
        policy_path=str(Path(policy).resolve()) if Path(policy).exists() else policy,
        specs=tuple(specs),
        max_steps=options.max_steps,
        eval_every=options.reports_every(),
    )
    trainable = tune.with_resources(tune.with_parameters(grpo_trial, setup=setup), tune.PlacementGroupFactory(bundles))
    if resume:
        tuner = tune.Tuner.restore(str(out / EXPERIMENT), trainable, resume_errored=True)
    else:
        tuner = _new_tuner(trainable, specs, options, out, concurrency)
    grid = tuner.fit()
    rows = rows_from_results(grid, specs, config, max_steps=options.max_steps)
    files = write_outputs(out, rows, specs, recipe, overrides, config_path=config_path, options=options,
                          concurrency=concurrency)
    return SweepResult(out_dir=out, rows=rows, best=best_row(rows), max_concurrent_trials=concurrency, files=files)


def _new_tuner(trainable, specs: list[TrialSpec], options: SweepOptions, out: Path, concurrency: int) -> tune.Tuner:
    """One trial per spec, ASHA on held-out accuracy (rungs counted in reports), errors recorded not retried."""
    return tune.Tuner(
        trainable,
        param_space=_param_space(specs),
        tune_config=tune.TuneConfig(
            scheduler=ASHAScheduler(
                time_attr="training_iteration", metric=METRIC, mode="max", max_t=options.max_reports(),
                grace_period=options.grace_period, reduction_factor=options.reduction_factor,
            ),
            num_samples=1,
            max_concurrent_trials=concurrency,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT,
            storage_path=str(out),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=1,
        ),
    )


def _param_space(specs: list[TrialSpec]) -> dict:
    """A grid over the trial indices; the weights (and lr / beta) follow from the index, so Tune's
    progress table and result records show them."""
    table = [s.to_dict() for s in specs]
    space: dict = {"index": tune.grid_search([s.index for s in specs])}
    for key in ("syntax_weight", "execution_weight", "semantic_weight", "learning_rate", "beta"):
        if any(row[key] is not None for row in table):
            space[key] = tune.sample_from(_Lookup(table, key))
    return space


@dataclass(frozen=True)
class _Lookup:
    """``sample_from`` callable: the value of ``key`` for the trial's index (picklable, unlike a lambda in a loop)."""

    table: list[dict]
    key: str

    def __call__(self, spec) -> float | None:
        return self.table[int(spec.config.index)][self.key]


def rows_from_results(grid, specs: list[TrialSpec], config: Config, *, max_steps: int) -> list[TrialRow]:
    """One TrialRow per trial spec, from Tune's ResultGrid."""
    by_index = {int(result.config["index"]): result for result in grid}
    # Tune's trial states as saved for a resume (TERMINATED, ERROR, or PENDING/PAUSED when the sweep was
    # interrupted); the ResultGrid does not expose them, and its in-memory trials read TERMINATED after Ctrl+C.
    saved = tune.ExperimentAnalysis(grid.experiment_path)
    tune_status = {int(t.config["index"]): t.status for t in saved.trials}
    rows = []
    for spec in specs:
        result = by_index.get(spec.index)
        lr = spec.learning_rate if spec.learning_rate is not None else config.learner.learning_rate
        beta = spec.beta if spec.beta is not None else config.grpo.beta
        base = dict(index=spec.index, syntax_weight=spec.syntax_weight, execution_weight=spec.execution_weight,
                    semantic_weight=spec.semantic_weight, learning_rate=lr, beta=beta)
        if result is None:
            rows.append(TrialRow(**base, trial_id="", accuracy=None, peak_accuracy=None, runs_without_error=None,
                                 steps=0, reports=0, status="NOT_RUN"))
            continue
        metrics = result.metrics or {}
        history = result.metrics_dataframe
        accuracy = metrics.get(METRIC)
        peak = float(history[METRIC].max()) if history is not None and METRIC in history else None
        steps = int(metrics.get("grpo/step", 0))
        if result.error is not None or tune_status.get(spec.index) == "ERROR":
            status = "ERROR"
        elif tune_status.get(spec.index) != "TERMINATED":
            status = "INTERRUPTED" if accuracy is not None else "NOT_RUN"
        elif accuracy is None:
            status = "NOT_RUN"
        else:
            status = "COMPLETED" if steps >= max_steps else "EARLY_STOPPED"
        rows.append(TrialRow(
            **base,
            trial_id=str(metrics.get("trial_id") or Path(result.path).name),
            accuracy=None if accuracy is None else float(accuracy),
            peak_accuracy=peak,
            runs_without_error=_float_or_none(metrics.get("eval/runs_without_error")),
            steps=steps,
            reports=int(metrics.get("training_iteration", 0)),
            status=status,
            error=short_error(result.error) if result.error is not None else "",
            path=str(result.path),
        ))
    return rows


def write_outputs(out: Path, rows: list[TrialRow], specs: list[TrialSpec], recipe: dict, overrides: list[str], *,
                  config_path: str | Path, options: SweepOptions, concurrency: int) -> dict[str, Path]:
    title = f"Reward-weight sweep of {Path(config_path).name}"
    notes = [
        f"{len(rows)} trials ({options.search}, seed {options.seed}), up to {options.max_steps} GRPO steps each; "
        f"held-out execution accuracy every {options.reports_every()} steps; ASHA grace period "
        f"{options.grace_period} report(s), reduction factor {options.reduction_factor:g}; "
        f"{concurrency} trial(s) at a time.",
        "accuracy = last reported held-out execution accuracy; peak = its maximum over the trial's reports.",
    ]
    if any(r.status in ("INTERRUPTED", "NOT_RUN") for r in rows):
        notes.append(f"The sweep did not finish: continue it with `rl-sql tune --config {config_path} --out {out} --resume`.")
    files = {
        "csv": write_csv(rows, out / "results.csv"),
        "markdown": write_markdown(rows, out / "results.md", title=title, notes=notes),
        "plot": plot_accuracy_vs_weights(rows, out / "accuracy_vs_weights.png", title=title),
    }
    best = best_row(rows)
    if best is not None:
        files["best"] = write_best_yaml(recipe, overrides, best, specs[best.index], out / "best.yaml", source=str(out))
    else:
        log.error("sweep: no trial reported an accuracy, so there is no best.yaml; see %s", files["markdown"])
    return files


def short_error(error: BaseException) -> str:
    """The innermost ``SomeError: message`` line of a (Ray-wrapped) trial error."""
    text = str(error)
    found = re.findall(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Exit)\w*: .+)$", text, flags=re.MULTILINE)
    return (found[-1] if found else f"{type(error).__name__}: {text.strip().splitlines()[-1] if text.strip() else ''}")[:500]


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def _with_absolute_paths(config: Config) -> Config:
    """The config with its relative paths made absolute (Tune runs trials in their own working dirs)."""
    updates = {}

    def absolute(value: str | None) -> str | None:
        if value is None or value.startswith("~") or Path(value).is_absolute():
            return value
        return str(Path(value).resolve())

    if config.model.init == "scratch" or Path(config.model.name_or_path).exists():
        updates["model"] = config.model.model_copy(update={"name_or_path": absolute(config.model.name_or_path)})
    updates["data"] = config.data.model_copy(update={"path": absolute(config.data.path),
                                                     "spider_dir": absolute(config.data.spider_dir)})
    updates["reward"] = config.reward.model_copy(update={"cache_dir": absolute(config.reward.cache_dir)})
    updates["sft"] = config.sft.model_copy(update={"output_dir": absolute(config.sft.output_dir)})
    updates["train"] = config.train.model_copy(update={"out_dir": absolute(config.train.out_dir)})
    return config.model_copy(update=updates)


def _save_state(out: Path, config_path, overrides, options: SweepOptions, specs, policy: str) -> None:
    state = {
        "config_path": str(Path(config_path).resolve()),
        "overrides": list(overrides),
        "options": {**asdict(options), "extra_overrides": {str(k): v for k, v in options.extra_overrides.items()}},
        "trials": [s.to_dict() for s in specs],
        "policy": policy,
    }
    (out / STATE_FILE).write_text(json.dumps(state, indent=2))


def _load_state(out: Path, config_path, overrides) -> tuple[str, list[str], SweepOptions]:
    """The stored recipe, overrides and options of the sweep in ``out`` (a resume runs the same trials)."""
    path = out / STATE_FILE
    if not path.is_file() or not (out / EXPERIMENT).is_dir():
        raise FileNotFoundError(f"--resume: no sweep in {out} (expected {path} and {out / EXPERIMENT}/)")
    state = json.loads(path.read_text())
    if config_path is not None and Path(config_path).resolve() != Path(state["config_path"]):
        log.warning("--resume: using the sweep's stored recipe %s, not %s", state["config_path"], config_path)
    if overrides and list(overrides) != state["overrides"]:
        log.warning("--resume: using the sweep's stored overrides %s, not %s", state["overrides"], overrides)
    raw = state["options"]
    options = SweepOptions(**{
        **raw,
        "lr_range": tuple(raw["lr_range"]) if raw["lr_range"] else None,
        "beta_range": tuple(raw["beta_range"]) if raw["beta_range"] else None,
        "extra_overrides": {int(k): list(v) for k, v in raw["extra_overrides"].items()},
    })
    return state["config_path"], state["overrides"], options
