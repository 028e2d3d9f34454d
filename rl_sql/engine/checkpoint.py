"""Run checkpoints: learner state (adapter, optimizer, scheduler), data cursor, RNG, step.

Layout: ``RUN_DIR/checkpoints/step_000042/`` with ``learner/`` (DeepSpeed's own format)
and ``state.json``. A checkpoint counts only once ``state.json`` exists (written last),
so a run killed mid-save resumes from the previous one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

STATE_FILE = "state.json"


def step_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:06d}"


def latest(run_dir: str | Path) -> Path | None:
    root = Path(run_dir) / "checkpoints"
    done = sorted(p for p in root.glob("step_*") if (p / STATE_FILE).is_file()) if root.is_dir() else []
    return done[-1] if done else None


def save_state(ckpt: Path, *, step: int, sampler_state: dict, extra: dict | None = None) -> None:
    """Write the driver's state; call after the learner has written ``ckpt / "learner"``."""
    rng = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state().tolist(),
    }
    torch.save(rng, ckpt / "rng.pt")
    state = {"step": step, "sampler": sampler_state, **(extra or {})}
    tmp = ckpt / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.rename(ckpt / STATE_FILE)


def load_state(ckpt: Path) -> dict:
    rng = torch.load(ckpt / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(torch.tensor(rng["torch"], dtype=torch.uint8))
    return json.loads((ckpt / STATE_FILE).read_text())


def prune(run_dir: str | Path, keep: int = 2) -> None:
    """Keep the ``keep`` newest complete checkpoints."""
    root = Path(run_dir) / "checkpoints"
    done = sorted(p for p in root.glob("step_*") if (p / STATE_FILE).is_file())
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
