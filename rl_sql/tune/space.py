"""The trials of a reward-weight sweep: points on the simplex of (syntax, execution, semantic).

Every trial is decided up front by a seeded generator (not drawn inside Tune), so a sweep
is reproducible, a resumed sweep runs the same trials, and a table row can be traced back
to its trial index:

- ``dirichlet``: ``num_samples`` draws from Dirichlet(alpha, alpha, alpha); alpha = 1 is
  uniform on the simplex, alpha < 1 favours corners, alpha > 1 the centre.
- ``grid``: the points of the simplex lattice {(i, j, k) / R : i + j + k = R} with a non-zero
  execution weight, R the smallest resolution that gives at least ``num_samples`` of them
  (1 -> execution only, 3 -> R = 2, 6 -> R = 3, 10 -> R = 4).

Every trial keeps an execution weight > 0 (at least ``MIN_EXECUTION_WEIGHT``): the engine
measures held-out execution accuracy through the execution component of the trial's own
reward, and ``CombinedReward`` skips zero-weight components, so a trial without it would
read 0% accuracy whatever SQL it writes.

Optionally each trial also draws a learning rate (log-uniform) and a KL coefficient beta
(uniform), from the same seeded generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SearchKind = Literal["dirichlet", "grid"]
WEIGHT_KEYS = ("syntax_weight", "execution_weight", "semantic_weight")
MIN_EXECUTION_WEIGHT = 1e-4


@dataclass(frozen=True)
class TrialSpec:
    """One trial: its reward weights (summing to 1) and, when tuned, learning rate and beta."""

    index: int
    syntax_weight: float
    execution_weight: float
    semantic_weight: float
    learning_rate: float | None = None
    beta: float | None = None
    extra_overrides: tuple[str, ...] = field(default_factory=tuple)
    """Further ``key.sub=value`` overrides of this trial only (e.g. to probe a setting)."""

    @property
    def weights(self) -> tuple[float, float, float]:
        return (self.syntax_weight, self.execution_weight, self.semantic_weight)

    def overrides(self) -> list[str]:
        """The recipe overrides that make the sweep's base recipe into this trial's recipe."""
        items = [f"reward.{key}={value!r}" for key, value in zip(WEIGHT_KEYS, self.weights)]
        if self.learning_rate is not None:
            items.append(f"learner.learning_rate={self.learning_rate!r}")
        if self.beta is not None:
            items.append(f"grpo.beta={self.beta!r}")
        return [*items, *self.extra_overrides]

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            **dict(zip(WEIGHT_KEYS, self.weights)),
            "learning_rate": self.learning_rate,
            "beta": self.beta,
            "extra_overrides": list(self.extra_overrides),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "TrialSpec":
        return cls(
            index=int(data["index"]),
            syntax_weight=float(data["syntax_weight"]),
            execution_weight=float(data["execution_weight"]),
            semantic_weight=float(data["semantic_weight"]),
            learning_rate=None if data.get("learning_rate") is None else float(data["learning_rate"]),
            beta=None if data.get("beta") is None else float(data["beta"]),
            extra_overrides=tuple(data.get("extra_overrides") or ()),
        )


def dirichlet_points(n: int, *, alpha: float = 1.0, seed: int = 0) -> np.ndarray:
    """(n, 3) points on the simplex drawn from Dirichlet(alpha, alpha, alpha); rows sum to 1."""
    if n < 1:
        raise ValueError(f"need at least one sample, got num_samples={n}")
    if alpha <= 0:
        raise ValueError(f"the Dirichlet concentration must be > 0, got alpha={alpha}")
    points_N3 = _round_to_simplex(np.random.default_rng(seed).dirichlet([alpha] * 3, size=n))
    for row in points_N3:  # a draw that rounds the execution weight away keeps the smallest one
        if row[1] < MIN_EXECUTION_WEIGHT:
            row[int(np.argmax(row))] -= MIN_EXECUTION_WEIGHT - row[1]
            row[1] = MIN_EXECUTION_WEIGHT
    return np.round(points_N3, 4)


def grid_resolution(n: int) -> int:
    """The smallest lattice resolution R with at least n points of non-zero execution weight (R(R+1)/2)."""
    if n < 1:
        raise ValueError(f"need at least one sample, got num_samples={n}")
    r = 1
    while r * (r + 1) // 2 < n:
        r += 1
    return r


def execution_grid(resolution: int) -> np.ndarray:
    """(P, 3) the lattice points of ``simplex_grid`` whose execution weight is > 0."""
    grid_P3 = simplex_grid(resolution)
    return grid_P3[grid_P3[:, 1] > 0]


def simplex_grid(resolution: int) -> np.ndarray:
    """(P, 3) every point (i, j, k) / R with i + j + k = R; corners first, then the rest in order."""
    if resolution < 1:
        raise ValueError(f"grid resolution must be >= 1, got {resolution}")
    r = resolution
    points = [(i / r, j / r, (r - i - j) / r) for i in range(r, -1, -1) for j in range(r - i, -1, -1)]
    corners = [p for p in points if max(p) == 1.0]
    rest = [p for p in points if max(p) < 1.0]
    return _round_to_simplex(np.array(corners + rest))


def make_trials(
    search: SearchKind,
    num_samples: int,
    *,
    seed: int = 0,
    alpha: float = 1.0,
    lr_range: tuple[float, float] | None = None,
    beta_range: tuple[float, float] | None = None,
    extra_overrides: dict[int, list[str]] | None = None,
) -> list[TrialSpec]:
    """The sweep's trials. ``lr_range`` / ``beta_range``: tune those too (None = keep the recipe's)."""
    if search == "dirichlet":
        points_N3 = dirichlet_points(num_samples, alpha=alpha, seed=seed)
    elif search == "grid":
        points_N3 = execution_grid(grid_resolution(num_samples))
    else:
        raise ValueError(f"unknown search {search!r}: use 'dirichlet' or 'grid'")
    n = len(points_N3)
    # a second stream, so tuning lr/beta does not change the weights drawn for a seed
    rng = np.random.default_rng([seed, 1])
    lrs = _loguniform(rng, lr_range, n) if lr_range is not None else [None] * n
    betas = _uniform(rng, beta_range, n) if beta_range is not None else [None] * n
    extra = extra_overrides or {}
    unknown = sorted(set(extra) - set(range(n)))
    if unknown:
        raise ValueError(f"extra overrides for trials {unknown}, but the sweep has trials 0..{n - 1}")
    return [
        TrialSpec(i, *map(float, points_N3[i]), learning_rate=lrs[i], beta=betas[i],
                  extra_overrides=tuple(extra.get(i, ())))
        for i in range(n)
    ]


def _loguniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> list[float]:
    lo, hi = bounds
    if not 0 < lo <= hi:
        raise ValueError(f"learning-rate range must satisfy 0 < low <= high, got {bounds}")
    return [float(_sig(math.exp(v))) for v in rng.uniform(math.log(lo), math.log(hi), size=n)]


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> list[float]:
    lo, hi = bounds
    if not 0 <= lo <= hi:
        raise ValueError(f"beta range must satisfy 0 <= low <= high, got {bounds}")
    return [float(_sig(v)) for v in rng.uniform(lo, hi, size=n)]


def _sig(x: float, digits: int = 4) -> float:
    """x rounded to ``digits`` significant digits (readable tables and recipes)."""
    return float(f"{x:.{digits}g}")


def _round_to_simplex(points_N3: np.ndarray, decimals: int = 4) -> np.ndarray:
    """Round to ``decimals`` places and put the rounding error on the largest weight, so rows sum to 1."""
    rounded = np.round(points_N3, decimals)
    for row in rounded:
        row[int(np.argmax(row))] += 1.0 - row.sum()
    return np.round(rounded, decimals)
