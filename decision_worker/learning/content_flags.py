"""Content quality: variants whose observed clicks, on the evaluation window, fall far below
what the model expected for the users they were shown to. A broken image, a misleading
headline or a wrong locale shows up here before anyone reads a dashboard.

The ranker's scores are not probabilities (lambdarank orders, it does not calibrate), so a
logistic map score → click probability is fitted on the test window's logged views (Platt
scaling: two numbers for the whole window, so the expected clicks add up to the observed
ones overall and one broken variant barely moves it). Not on the validation window: it keeps
only slates with a click, whose click rate is higher than the test window's. Per variant,
expected clicks E = Σp with variance V = Σp(1 − p) (a Poisson-binomial count). A variant is
flagged when it had enough expectation to judge (E ≥ MIN_EXPECTED), observed fewer than
RATIO × E clicks, and the one-sided normal test of O against E gives p < P_VALUE: "far
below", by a margin that matters and beyond chance. The catalog is tested variant by variant
at p < 0.001, so a hundred healthy variants raise a false flag one time in ten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit, ndtr  # ndtr: the normal CDF, as scipy.stats

from decision_worker.learning.evaluation import Scorer
from decision_worker.learning.examples import Examples
from decision_worker.ranking.arrays import FloatArray

MIN_EXPECTED = 10.0
RATIO = 0.5
P_VALUE = 0.001


@dataclass(frozen=True)
class ContentFlag:
    placement: str
    variant: str
    views: int
    clicks: int
    expected_clicks: float
    p_value: float

    def describe(self) -> str:
        return (f"{self.placement}/{self.variant}: {self.clicks} clicks in {self.views:,} views "
                f"({self.clicks / self.views:.2%}), the model expected "
                f"{self.expected_clicks:.1f} ({self.expected_clicks / self.views:.2%}); "
                f"p {self.p_value:.2g}")


def platt(scores: FloatArray, clicked: np.ndarray, weights: FloatArray | None = None
          ) -> tuple[float, float]:
    """(a, b) of p = sigmoid(a·score + b), fitted by maximum likelihood, each row counted
    `weights` times (default once)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(clicked, dtype=np.float64)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * s + ab[1]
        value = -float(np.sum(w * (y * log_expit(z) + (1 - y) * log_expit(-z))))
        residual = w * (expit(z) - y)
        return value, np.array([float(residual @ s), float(residual.sum())])

    prior = float(np.clip(np.average(y, weights=w), 1e-4, 1 - 1e-4))
    fitted = minimize(loss, np.array([0.0, math.log(prior / (1 - prior))]), jac=True,
                      method="L-BFGS-B")
    return float(fitted.x[0]), float(fitted.x[1])


def content_flags(score: Scorer, test_set: Examples) -> list[ContentFlag]:
    """The test window's variants that under-performed the model's expectation, worst
    first. Only logged views (slates) count: session starts have no view of their own."""
    test = _views(test_set)
    clicked = (test.label > 0).astype(np.float64)
    if len(test) == 0 or clicked.min() == clicked.max():
        return []
    scores = score(test.x)
    weights = np.repeat(test.weights(), test.group_sizes)  # sampled slates without a click
    a, b = platt(scores, clicked, weights)
    expected = expit(a * scores + b)
    placements = np.repeat(np.array(test.group_placement, dtype=object), test.group_sizes)
    keys = np.array([f"{p}/{v}" for p, v in zip(placements, test.variant, strict=True)])
    flags = []
    for key in np.unique(keys):
        rows = keys == key
        e = float((weights[rows] * expected[rows]).sum())
        v = float((weights[rows] * expected[rows] * (1 - expected[rows])).sum())
        o = int(clicked[rows].sum())  # every slate with a click is kept
        if e < MIN_EXPECTED or o >= RATIO * e or v <= 0:
            continue
        p_value = float(ndtr((o - e) / math.sqrt(v)))
        if p_value < P_VALUE:
            placement, variant = str(key).split("/", 1)
            flags.append(ContentFlag(placement, variant, round(float(weights[rows].sum())), o,
                                     e, p_value))
    return sorted(flags, key=lambda f: f.p_value)


def _views(examples: Examples) -> Examples:
    return examples.select([kind == "slate" for kind in examples.group_kind])
