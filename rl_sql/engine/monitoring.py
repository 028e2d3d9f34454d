"""Where a run's numbers go: ``metrics.jsonl`` in the run dir (the report reads it),
Weights & Biases (offline without WANDB_API_KEY), Ray metrics for the dashboard, and a
console progress bar.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from rl_sql.config import Config

log = logging.getLogger(__name__)

# Ray dashboard gauges: name -> metric key in the step's metrics.
_RAY_GAUGES = {
    "rl_sql_reward_mean": "reward/mean",
    "rl_sql_tokens_per_s": "perf/rollout_tokens_per_s",
    "rl_sql_time_generate_s": "time/generate",
    "rl_sql_time_score_s": "time/score",
    "rl_sql_time_update_s": "time/update",
    "rl_sql_time_push_s": "time/push",
    "rl_sql_reward_queue_depth": "queue/reward_pending_max",
    "rl_sql_kl": "kl_divergence",
}


class RunLogger:
    def __init__(self, config: Config, run_dir: Path, *, total_steps: int, start_step: int = 0):
        self.run_dir = run_dir
        self.jsonl = open(run_dir / "metrics.jsonl", "a")
        self.wandb = _init_wandb(config, run_dir)
        self.gauges = _init_ray_gauges()
        self.bar = None
        if config.logging.progress_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="grpo", unit="step", dynamic_ncols=True)

    def set_total(self, total_steps: int) -> None:
        if self.bar is not None:
            self.bar.total = total_steps
            self.bar.refresh()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": step, **metrics}
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)
        for name, key in _RAY_GAUGES.items():
            if key in metrics and name in self.gauges:
                self.gauges[name].set(float(metrics[key]))
        if self.bar is not None:
            self.bar.update(1)
            shown = {"reward": ("reward/mean", ".3f"), "acc": ("reward/exec_match", ".2f"),
                     "kl": ("kl_divergence", ".4f"), "dev": ("dev/exec_accuracy", ".3f")}
            self.bar.set_postfix({name: format(metrics[key], spec) for name, (key, spec) in shown.items() if key in metrics})
        else:
            log.info("step %d %s", step, {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})

    def close(self) -> None:
        self.jsonl.close()
        if self.bar is not None:
            self.bar.close()
        if self.wandb is not None:
            self.wandb.finish()


def _init_wandb(config: Config, run_dir: Path):
    mode = config.logging.wandb_mode
    if mode == "disabled":
        return None
    if mode == "auto":
        mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    try:
        import wandb
    except ImportError:
        log.warning("wandb is not installed: metrics go to %s/metrics.jsonl only", run_dir)
        return None
    run = wandb.init(
        project=config.logging.wandb_project,
        mode=mode,
        dir=str(run_dir),
        config=config.model_dump(mode="json"),
        name=run_dir.name,
        resume="allow",
        id=_run_id(run_dir),
    )
    log.info("wandb run %s (%s)", run.id, mode)
    return run


def _run_id(run_dir: Path) -> str:
    """A stable wandb id per run dir, so --resume continues the same curves."""
    path = run_dir / "wandb_id.txt"
    if path.is_file():
        return path.read_text().strip()
    import uuid

    run_id = uuid.uuid4().hex[:12]
    path.write_text(run_id)
    return run_id


def _init_ray_gauges() -> dict:
    import ray

    if not ray.is_initialized():
        return {}
    from ray.util.metrics import Gauge

    return {name: Gauge(name, description=f"rl_sql {key}") for name, key in _RAY_GAUGES.items()}
