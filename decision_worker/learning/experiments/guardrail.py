"""Guardrails: "is the treatment worse than control by more than MAX_DROP?", asked every few
minutes while a rollout ramps. A fixed-horizon interval checked that often would cross a
threshold by chance sooner or later; the normal-mixture confidence sequence on the log lift
stays valid at every look (confidence_sequence.py).

The decision is one-sided: breached when the whole sequence lies below log(1 − MAX_DROP),
i.e. the treatment's click-through (or conversion rate, conversions per exposure) is, with
confidence, lower than control's by more than MAX_DROP (relative). The sequence is two-sided
at level 1 − alpha, so the chance of a breach when the true drop is MAX_DROP or less is at
most alpha over the whole rollout, peeking included (about alpha / 2 in practice: only the
lower side can trigger)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from decision_worker.learning.experiments.arm_totals import ArmTotals
from decision_worker.learning.experiments.confidence_sequence import (
    mixture_half_width,
    mixture_p_value,
)
from decision_worker.learning.experiments.lift import rates_and_log_lift

# Before this many clicks in each arm (conversions, for a conversion guardrail: whatever
# events the totals' y holds) the ratio's normal approximation (and its estimated variance)
# is too rough to act on, at any level.
MIN_CLICKS_PER_ARM = 30
EVENTS = {"click_through": "clicks", "conversion": "conversions"}


@dataclass(frozen=True)
class Guardrail:
    """metric: which totals the caller passes ("click_through", or "conversion": y then
    holds conversions); max_drop: relative
    drop tolerated (0.02 = the treatment may be up to 2 % worse); mixture_sd: the spread of
    log lifts the test is tuned to catch (5 % here: tightest where a drop of a few per cent
    becomes visible); alpha: the error bound of a breach over the whole rollout."""

    metric: str
    max_drop: float
    alpha: float = 0.05
    mixture_sd: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.max_drop < 1:
            raise ValueError(f"guardrail {self.metric}: max drop must be in [0, 1)")
        if not 0 < self.alpha < 1 or self.mixture_sd <= 0:
            raise ValueError(f"guardrail {self.metric}: need 0 < alpha < 1, mixture_sd > 0")


@dataclass(frozen=True)
class GuardrailCheck:
    """The relative lift with its always-valid interval (nan while there is too little
    data) and whether the guardrail is breached."""

    guardrail: Guardrail
    relative_lift: float
    low: float
    high: float
    p_value: float
    breached: bool

    def describe(self) -> str:
        g = self.guardrail
        if math.isnan(self.relative_lift):
            events = EVENTS.get(g.metric, "events")
            return f"{g.metric}: not enough {events} yet (≥ {MIN_CLICKS_PER_ARM} per arm)"
        verdict = "BREACHED" if self.breached else "holds"
        return (f"{g.metric}: lift {self.relative_lift:+.2%} [{self.low:+.2%}, "
                f"{self.high:+.2%}] (always valid, {1 - g.alpha:.0%}); max drop "
                f"{g.max_drop:.1%} {verdict} (p {self.p_value:.3g})")


def check_guardrail(guardrail: Guardrail, control: ArmTotals, treatment: ArmTotals
                    ) -> GuardrailCheck:
    """The guardrail on cumulative totals at this look."""
    waiting = GuardrailCheck(guardrail, math.nan, math.nan, math.nan, 1.0, False)
    if min(control.clicks, treatment.clicks) < MIN_CLICKS_PER_ARM:
        return waiting
    rates = rates_and_log_lift(control, treatment)
    if rates is None:
        return waiting
    logged = rates[2]
    mixture_variance = guardrail.mixture_sd ** 2
    half_width = mixture_half_width(logged.variance, mixture_variance, guardrail.alpha)
    threshold = math.log1p(-guardrail.max_drop)
    high = logged.value + half_width
    p_value = 1.0 if logged.value >= threshold else mixture_p_value(
        logged.value, threshold, logged.variance, mixture_variance)
    return GuardrailCheck(guardrail, math.expm1(logged.value),
                          math.expm1(logged.value - half_width), math.expm1(high), p_value,
                          breached=high < threshold)
