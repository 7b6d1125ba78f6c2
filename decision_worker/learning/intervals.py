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
    return ratio_interval(users, diff, np.ones(len(diff)), seed)


def ratio_interval(users: list[str], numerator: FloatArray, denominator: FloatArray,
                   seed: int = 0) -> Interval:
    """Σ numerator / Σ denominator over groups (a mean when the denominator is all ones; a
    self-normalised estimate when it holds weights), with a 95 % interval from resampling
    users."""
    top = np.asarray(numerator, dtype=np.float64)
    bottom = np.asarray(denominator, dtype=np.float64)
    if len(top) == 0 or bottom.sum() == 0:
        return Interval(float("nan"), float("nan"), float("nan"), len(top),
                        len(set(users)))
    names, index = np.unique(np.asarray(users), return_inverse=True)
    tops = np.bincount(index, top, minlength=len(names))
    bottoms = np.bincount(index, bottom, minlength=len(names))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), size=(RESAMPLES, len(names)))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = tops[picks].sum(axis=1) / bottoms[picks].sum(axis=1)
    ratios = ratios[np.isfinite(ratios)]
    tail = (1 - LEVEL) / 2
    return Interval(float(top.sum() / bottom.sum()), float(np.quantile(ratios, tail)),
                    float(np.quantile(ratios, 1 - tail)), len(top), len(names))
