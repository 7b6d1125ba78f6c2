"""Sample-ratio mismatch: are the arms' counts what the configured shares say they should
be? A mismatch means assignment or exposure logging is broken, so no lift can be trusted.
Chi-square goodness of fit, alarm at p < 0.001 (GrowthBook, Statsig and Eppo's threshold:
checked often, a looser one would cry wolf).

Count units of assignment (users): exposures of one user arrive together, so counting
exposures makes the chi-square over-dispersed and it alarms on a correct split far more
often than its p-value says (measured in docs/benchmarks.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import chisquare

SRM_P_VALUE = 0.001


@dataclass(frozen=True)
class SampleRatioCheck:
    observed: tuple[int, ...]
    shares: tuple[float, ...]
    chi_square: float
    p_value: float
    threshold: float = SRM_P_VALUE

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold

    def describe(self) -> str:
        total = sum(self.observed) or 1
        seen = ", ".join(f"{n:,} ({n / total:.2%} vs {s:.2%})"
                         for n, s in zip(self.observed, self.shares, strict=True))
        verdict = "MISMATCH" if self.mismatch else "no mismatch"
        return f"sample ratio {verdict}: {seen}; chi² {self.chi_square:.2f}, p {self.p_value:.2g}"


def check_sample_ratio(observed: Sequence[int], shares: Sequence[float],
                       threshold: float = SRM_P_VALUE) -> SampleRatioCheck:
    """Observed counts per arm against the configured shares (any positive scale: they are
    normalised). An arm with share 0 that has counts is a certain mismatch."""
    if len(observed) != len(shares) or len(observed) < 2:
        raise ValueError("need one share per arm, and at least two arms")
    if min(observed) < 0 or min(shares) < 0 or sum(shares) <= 0:
        raise ValueError("counts and shares must be non-negative, shares not all zero")
    scale = sum(shares)
    normalised = tuple(s / scale for s in shares)
    counts = tuple(int(n) for n in observed)
    if any(n > 0 and s == 0 for n, s in zip(counts, normalised, strict=True)):
        return SampleRatioCheck(counts, normalised, math.inf, 0.0, threshold)
    kept = [(n, s) for n, s in zip(counts, normalised, strict=True) if s > 0]
    total = sum(n for n, _ in kept)
    if total == 0 or len(kept) < 2:
        return SampleRatioCheck(counts, normalised, 0.0, 1.0, threshold)
    kept_share = sum(s for _, s in kept)
    expected = [total * s / kept_share for _, s in kept]
    statistic, p_value = chisquare([n for n, _ in kept], f_exp=expected)
    return SampleRatioCheck(counts, normalised, float(statistic), float(p_value), threshold)
