"""Turning an experiment's arm counters (read by arm_reads.py) into the figures a look needs:
the ramp rule's state, and the analysis an operator reads (CLI and dashboard).

The counters are hashes (one per arm per step, and over all steps as step "all") of the sums
of two ratio metrics, click-through and conversion rate (conversions per exposure), over the
experiment's placements and per placement, kept by the worker as exposures, clicks and
conversions arrive. The analysis gives each arm's users, exposures, clicks, click-through,
conversions and conversion rate with delta-method 95 % intervals, and the treatment's lift
against control in both metrics with 95 % intervals: over all placements, and per
placement."""

from __future__ import annotations

import math
from typing import Any

from redis import Redis

from decision_worker.learning.experiments.arm_reads import (
    ARMS,
    ArmCounts,
    ScopeCounts,
    read_counts,
    read_totals,
)
from decision_worker.learning.experiments.arm_totals import ArmTotals, click_through
from decision_worker.learning.experiments.guardrail import Guardrail, check_guardrail
from decision_worker.learning.experiments.lift import lift_against_control
from decision_worker.learning.experiments.ramp import RolloutState
from decision_worker.learning.experiments.sample_ratio import check_sample_ratio
from decision_worker.ranking.experiment import (
    CONTROL,
    CONTROL_FROM,
    HOLDOUT,
    PERSONALIZATION,
    TREATMENT,
    Experiment,
)

__all__ = ["ARMS", "analysis", "arms_and_lift", "personalization_analysis", "read_counts",
           "read_totals", "rollout_state", "scope_figures"]


def rollout_state(redis: Redis, experiment: Experiment) -> RolloutState:
    """What the ramp rule needs at this look: this step's exposures and users per arm (for
    the gate and the sample-ratio check) and the guardrails on the totals of all steps."""
    step = read_totals(redis, experiment.id, experiment.step_index)
    overall = read_counts(redis, experiment.id, "all").overall
    checks = tuple(check_guardrail(Guardrail(rule.metric, rule.max_drop),
                                   overall[CONTROL].of(rule.metric),
                                   overall[TREATMENT].of(rule.metric))
                   for rule in experiment.guardrails)
    ratio = check_sample_ratio([step[TREATMENT].users, step[CONTROL].users],
                               [experiment.share, 100 * (1 - CONTROL_FROM)])
    return RolloutState(experiment.steps, experiment.step_index, step[TREATMENT].exposures,
                        step[CONTROL].exposures, experiment.min_exposures, checks, ratio)


def analysis(redis: Redis, experiment: Experiment) -> dict[str, Any]:
    """Over all steps, per arm and per placement (`scope_figures`): users, exposures, clicks,
    click-through, conversions and conversion rate (delta-method intervals), the treatment's
    lift against control in both with 95 % intervals; this step's sample-ratio check; the
    guardrails. JSON-ready; nan becomes None."""
    state = rollout_state(redis, experiment) if experiment.status == "ramping" else None
    return {
        **scope_figures(read_counts(redis, experiment.id, "all")),
        "srm": None if state is None else {
            "p_value": state.sample_ratio.p_value, "mismatch": state.sample_ratio.mismatch,
            "describe": state.sample_ratio.describe()},
        "guardrails": [] if state is None else [
            {"metric": c.guardrail.metric, "max_drop": c.guardrail.max_drop,
             "lift": _finite(c.relative_lift), "low": _finite(c.low), "high": _finite(c.high),
             "breached": c.breached, "describe": c.describe()} for c in state.guardrails],
    }


def personalization_analysis(redis: Redis) -> dict[str, Any]:
    """The lift of personalization itself: the band of users served as usual against the
    persistent holdout (ranking/experiment.py, PERSONALIZATION), over all time. No
    sample-ratio check: band users inside a rollout's arm count for the rollout instead."""
    return scope_figures(read_counts(redis, PERSONALIZATION, "all", (HOLDOUT, TREATMENT)))


def scope_figures(counts: ScopeCounts) -> dict[str, Any]:
    """`arms_and_lift` over the experiment's placements, and per placement under
    "placements" (placement → the same shape; {} while nothing was counted)."""
    return {**arms_and_lift(counts.overall),
            "placements": {placement: arms_and_lift(by_arm)
                           for placement, by_arm in counts.placements.items()}}


def arms_and_lift(counts: dict[str, ArmCounts]) -> dict[str, Any]:
    """Each arm's figures and the second arm's lift against the first (the control):
    "lift_now" in click-through, "conversion_lift_now" in conversion rate (None until
    both arms have two users and an event of the metric)."""
    control, treatment = counts.values()
    return {"arms": {arm: _arm_figures(arm_counts) for arm, arm_counts in counts.items()},
            "lift_now": _lift(control, treatment, "click_through"),
            "conversion_lift_now": _lift(control, treatment, "conversion")}


def _lift(control: ArmCounts, treatment: ArmCounts, metric: str) -> dict[str, Any] | None:
    lift = lift_against_control(control.of(metric), treatment.of(metric), metric=metric)
    return None if lift is None else {
        "value": lift.relative, "low": lift.relative_low, "high": lift.relative_high,
        "difference": lift.difference, "describe": lift.describe()}


def _arm_figures(counts: ArmCounts) -> dict[str, Any]:
    clicks = counts.of("click_through")
    rate, low, high = _rate(clicks)
    conversion, conversion_low, conversion_high = _rate(counts.of("conversion"))
    return {"users": clicks.users, "exposures": clicks.exposures, "clicks": clicks.clicks,
            "click_through": rate, "low": low, "high": high,
            "conversions": counts.conversions, "conversion_rate": conversion,
            "conversion_low": conversion_low, "conversion_high": conversion_high}


def _rate(totals: ArmTotals) -> tuple[float | None, float | None, float | None]:
    """The ratio (y per exposure) with its delta-method 95 % interval; Nones below 2 users."""
    rate = click_through(totals)
    if rate is None:
        return None, None, None
    half = 1.96 * math.sqrt(rate.variance)
    return rate.value, rate.value - half, rate.value + half


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
