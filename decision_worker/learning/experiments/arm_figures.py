"""Reading an experiment's arm counters and turning them into the figures a look needs: the
ramp rule's state, and the analysis an operator reads (CLI and dashboard).

The counters are hashes whose fields are ArmTotals' field names (one per arm per step, and
over all steps as step "all"), kept by the worker as exposures and clicks arrive."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from redis import Redis

from decision_worker.keys import arm_totals_key
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

ARMS = (CONTROL, TREATMENT)
_SUMS = [f.name for f in fields(ArmTotals) if f.name != "arm"]


def read_totals(redis: Redis, experiment: str, step: int | str,
                arms: tuple[str, str] = ARMS) -> dict[str, ArmTotals]:
    """Both arms' totals in one step (or "all"); zeros where nothing was counted yet."""
    with redis.pipeline(transaction=False) as pipe:
        for arm in arms:
            pipe.hmget(arm_totals_key(experiment, step, arm), _SUMS)
        rows = pipe.execute()
    return {arm: ArmTotals(arm, *(int(v or 0) for v in row))
            for arm, row in zip(arms, rows, strict=True)}


def rollout_state(redis: Redis, experiment: Experiment) -> RolloutState:
    """What the ramp rule needs at this look: this step's exposures and users per arm (for
    the gate and the sample-ratio check) and the guardrails on the totals of all steps."""
    step = read_totals(redis, experiment.id, experiment.step_index)
    overall = read_totals(redis, experiment.id, "all")
    checks = tuple(check_guardrail(Guardrail(rule.metric, rule.max_drop),
                                   overall[CONTROL], overall[TREATMENT])
                   for rule in experiment.guardrails)
    ratio = check_sample_ratio([step[TREATMENT].users, step[CONTROL].users],
                               [experiment.share, 100 * (1 - CONTROL_FROM)])
    return RolloutState(experiment.steps, experiment.step_index, step[TREATMENT].exposures,
                        step[CONTROL].exposures, experiment.min_exposures, checks, ratio)


def analysis(redis: Redis, experiment: Experiment) -> dict[str, Any]:
    """Per arm users, exposures, clicks and click-through (delta-method interval); the
    treatment's lift against control with its 95 % interval; this step's sample-ratio check;
    the guardrails. JSON-ready; nan becomes None."""
    state = rollout_state(redis, experiment) if experiment.status == "ramping" else None
    return {
        **arms_and_lift(read_totals(redis, experiment.id, "all")),
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
    return arms_and_lift(read_totals(redis, PERSONALIZATION, "all", (HOLDOUT, TREATMENT)))


def arms_and_lift(totals: dict[str, ArmTotals]) -> dict[str, Any]:
    """Each arm's figures and the second arm's lift against the first (the control)."""
    control, treatment = totals.values()
    lift = lift_against_control(control, treatment)
    return {
        "arms": {arm: _arm_figures(arm_totals) for arm, arm_totals in totals.items()},
        "lift_now": None if lift is None else {
            "value": lift.relative, "low": lift.relative_low, "high": lift.relative_high,
            "difference": lift.difference, "describe": lift.describe()}}


def _arm_figures(totals: ArmTotals) -> dict[str, Any]:
    rate = click_through(totals)
    half = None if rate is None else 1.96 * math.sqrt(rate.variance)
    return {"users": totals.users, "exposures": totals.exposures, "clicks": totals.clicks,
            "click_through": None if rate is None else rate.value,
            "low": None if rate is None or half is None else rate.value - half,
            "high": None if rate is None or half is None else rate.value + half}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
