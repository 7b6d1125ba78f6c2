"""Bootstrap intervals over users: a heavy user's many sessions move together, so users,
not sessions, are resampled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from decision_worker.ranking.arrays import FloatArray

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    groups: int
    users: int

    def describe(self) -> str:
        return f"{self.value:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def paired_difference(users: list[str], mine: FloatArray, theirs: FloatArray,
                      seed: int = 0) -> Interval:
    """Mean of `mine − theirs` over groups, with a 95 % interval from resampling users."""
    diff = np.asarray(mine, dtype=np.float64) - np.asarray(theirs, dtype=np.float64)
    if len(diff) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, 0)
    names, index = np.unique(np.asarray(users), return_inverse=True)
    sums = np.bincount(index, diff, minlength=len(names))
    counts = np.bincount(index, minlength=len(names)).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), size=(RESAMPLES, len(names)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    tail = (1 - LEVEL) / 2
    return Interval(float(diff.mean()), float(np.quantile(means, tail)),
                    float(np.quantile(means, 1 - tail)), len(diff), len(names))
