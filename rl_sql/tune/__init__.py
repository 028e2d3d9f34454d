"""Ray Tune sweeps over the reward weights (``rl-sql tune``): see ``sweep.py``."""

from rl_sql.tune.space import TrialSpec, make_trials
from rl_sql.tune.sweep import SweepOptions, SweepResult, run_sweep

__all__ = ["SweepOptions", "SweepResult", "TrialSpec", "make_trials", "run_sweep"]
