"""Lift of an arm against control, with fixed-horizon intervals: the figure to read once an
experiment has run its planned course (for decisions taken while peeking, `guardrail`).

The absolute difference of click-through gets a symmetric normal interval (the variances of
two independent arms add). The relative lift gets its interval on the log scale,
log(r_arm / r_control) ± z·√(V_arm / r_arm² + V_control / r_control²), mapped back: it never
reaches below −100 % and covers better than a symmetric one when the control's rate is
noisy."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm

from decision_worker.learning.experiments.arm_totals import ArmTotals, Estimate, click_through

LEVEL = 0.95
# How each ratio metric of the arm counters is named to a reader (the same arithmetic: y is
# clicks for click-through, conversions for the conversion rate; arm_reads.py)
METRIC_NAMES = {"click_through": "click-through", "conversion": "conversion rate"}


@dataclass(frozen=True)
class Lift:
    arm: str
    control: str
    arm_rate: float
    control_rate: float
    difference: float
    difference_low: float
    difference_high: float
    relative: float
    relative_low: float
    relative_high: float
    level: float
    metric: str = "click_through"

    def describe(self) -> str:
        name = METRIC_NAMES.get(self.metric, self.metric)
        return (f"{self.arm} vs {self.control}: {name} {self.arm_rate:.4%} vs "
                f"{self.control_rate:.4%}, lift {self.relative:+.2%} "
                f"[{self.relative_low:+.2%}, {self.relative_high:+.2%}] ({self.level:.0%})")


@dataclass(frozen=True)
class LogLift:
    """log(r_arm / r_control) and its delta-method variance: what both the fixed-horizon
    interval and the sequential guardrail test work on."""

    value: float
    variance: float


def log_lift(arm: Estimate, control: Estimate) -> LogLift | None:
    """None when either rate is 0 (no click yet: the log is undefined)."""
    if arm.value <= 0 or control.value <= 0:
        return None
    return LogLift(math.log(arm.value / control.value),
                   arm.variance / arm.value ** 2 + control.variance / control.value ** 2)


def rates_and_log_lift(control: ArmTotals, arm: ArmTotals
                       ) -> tuple[Estimate, Estimate, LogLift] | None:
    """(arm's click-through, control's, the log of their ratio); None until both arms have
    two users and a click."""
    arm_rate, control_rate = click_through(arm), click_through(control)
    if arm_rate is None or control_rate is None:
        return None
    logged = log_lift(arm_rate, control_rate)
    return None if logged is None else (arm_rate, control_rate, logged)


def lift_against_control(control: ArmTotals, arm: ArmTotals, level: float = LEVEL,
                         metric: str = "click_through") -> Lift | None:
    """Click-through lift of `arm` over `control` (or the lift of `metric`, whose events the
    totals' y holds); None until both arms have two users and an event."""
    rates = rates_and_log_lift(control, arm)
    if rates is None:
        return None
    arm_rate, control_rate, logged = rates
    z = float(norm.ppf(0.5 + level / 2))
    difference = arm_rate.value - control_rate.value
    spread = z * math.sqrt(arm_rate.variance + control_rate.variance)
    log_spread = z * math.sqrt(logged.variance)
    return Lift(arm.arm, control.arm, arm_rate.value, control_rate.value, difference,
                difference - spread, difference + spread, math.expm1(logged.value),
                math.expm1(logged.value - log_spread), math.expm1(logged.value + log_spread),
                level, metric)


def lifts_against_control(control: ArmTotals, arms: list[ArmTotals], level: float = LEVEL
                          ) -> dict[str, Lift | None]:
    """Each arm against the one control. Each interval is at `level` on its own (no
    correction for several arms, as GrowthBook, Statsig and Eppo do by default)."""
    return {arm.arm: lift_against_control(control, arm, level) for arm in arms}
