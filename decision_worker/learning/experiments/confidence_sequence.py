"""Always-valid inference for an asymptotically normal estimate, by the normal mixture
(Robbins' mixture; as the mSPRT of Johari et al., "Always Valid Inference", 2017, behind
Optimizely's sequential test; as an asymptotic confidence sequence, Howard et al. 2021 and
Waudby-Smith et al. 2023, the method Eppo and GrowthBook describe for theirs).

With an estimate θ̂ of variance V at the current look and a N(θ₀, τ²) mixture over the true
effect, the mixture likelihood ratio against θ₀ is

    Λ = √(V / (V + τ²)) · exp((θ̂ − θ₀)² τ² / (2 V (V + τ²))),

a martingale under θ₀, so by Ville's inequality P(Λ ever ≥ 1/α) ≤ α: however often one
looks, rejecting when Λ ≥ 1/α keeps the error at α. Inverting it gives the confidence
sequence θ̂ ± √(V (V + τ²) / τ² · (2 log(1/α) + log(1 + τ² / V))), which holds at every look
at once. It is wider than the fixed-horizon interval; τ sets where it is tightest (at V ≈ τ²
/ 8 for α = 0.05): pick it near the effect sizes the test exists to catch."""

from __future__ import annotations

import math


def mixture_half_width(variance: float, mixture_variance: float, alpha: float) -> float:
    """Half-width of the (1 − alpha) confidence sequence at a look where the estimate has
    this variance; infinite before there is any information (variance 0 counts as none)."""
    if not 0 < alpha < 1 or mixture_variance <= 0:
        raise ValueError("need 0 < alpha < 1 and a positive mixture variance")
    if variance <= 0 or not math.isfinite(variance):
        return math.inf
    ratio = mixture_variance / variance
    return math.sqrt(variance * (1 + ratio) / ratio
                     * (2 * math.log(1 / alpha) + math.log1p(ratio)))


def mixture_p_value(estimate: float, null: float, variance: float,
                    mixture_variance: float) -> float:
    """Always-valid p-value of `null` at this look, min(1, 1/Λ): below alpha exactly when
    `null` is outside the (1 − alpha) sequence. (Taking the running minimum over looks is
    also valid; the rule here needs only the current look.)"""
    if mixture_variance <= 0:
        raise ValueError("need a positive mixture variance")
    if variance <= 0 or not math.isfinite(variance):
        return 1.0
    total = variance + mixture_variance
    log_ratio = (0.5 * math.log(variance / total)
                 + (estimate - null) ** 2 * mixture_variance / (2 * variance * total))
    return math.exp(-log_ratio) if log_ratio > 0 else 1.0
