"""Bootstrap confidence intervals for accuracies and for paired differences of accuracies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bootstrap_ci(correct: Sequence[bool], *, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(accuracy, low, high): percentile bootstrap over examples."""
    x = np.asarray(correct, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci: no examples")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_difference_ci(
    a: Sequence[bool], b: Sequence[bool], *, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean(a) - mean(b), low, high) with the same examples resampled for both (paired)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape or xa.size == 0:
        raise ValueError(f"paired_difference_ci: need two equal, non-empty verdict lists, got {xa.size} and {xb.size}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, xa.size, size=(resamples, xa.size))
    diffs = xa[idx].mean(axis=1) - xb[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return float(xa.mean() - xb.mean()), float(np.quantile(diffs, alpha)), float(np.quantile(diffs, 1 - alpha))
