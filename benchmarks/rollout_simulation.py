"""Simulated traffic for the rollout statistics benchmark (rollout_statistics.py): a
synthetic population with heterogeneous click-through and heavy-tailed activity, and a
rollout ramped by the product's own rule (decision_worker.learning.experiments.ramp) with the
guardrail and the sample-ratio check run after every batch of exposures. Vectorised with
numpy: one batch of tens of thousands of exposures is a handful of array operations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from decision_worker.learning.experiments.arm_totals import ArmTotals
from decision_worker.learning.experiments.guardrail import Guardrail, check_guardrail
from decision_worker.learning.experiments.ramp import (
    DEFAULT_STEPS,
    RampDecision,
    RolloutState,
    decide_ramp,
)
from decision_worker.learning.experiments.sample_ratio import check_sample_ratio

BASE_CTR = 0.05
CTR_CEILING = 0.2            # ctr = 0.2 · Beta(1, 3): mean 5 %, sd 3.9 %, never above 20 %
ACTIVITY_SHAPE = 0.6         # gamma: most users come rarely, a few come very often
CONTROL_RANGE = 0.5          # control: users hashed in [0.5, 1) until the last step (100 %)


@dataclass(frozen=True)
class Population:
    ctr: np.ndarray           # each user's own click-through (before any treatment)
    activity: np.ndarray      # relative rate of exposures, mean 1
    bucket: np.ndarray        # the user's hash in [0, 1): sticky arm assignment


def population(rng: np.random.Generator, users: int) -> Population:
    ctr = CTR_CEILING * rng.beta(1.0, 3.0, users)
    activity = rng.gamma(ACTIVITY_SHAPE, 1 / ACTIVITY_SHAPE, users)
    return Population(ctr, activity, rng.random(users))


def user_counts(rng: np.random.Generator, people: Population, mean_exposures: float,
                lift: float) -> tuple[np.ndarray, np.ndarray]:
    """Exposures (≥ 1, heavy-tailed around `mean_exposures`) and clicks per user, each user's
    click-through multiplied by 1 + lift: the true relative lift of Σclicks / Σexposures is
    exactly `lift`, whatever the mix of users."""
    exposures = 1 + rng.poisson(people.activity * (mean_exposures - 1))
    clicks = rng.binomial(exposures, people.ctr * (1 + lift))
    return exposures, clicks


def sorted_uniforms(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` uniform draws in increasing order, without a sort (normalised cumulative
    exponential gaps): sorted, the batch's users come out grouped, and searchsorted walks
    the activity table once. The order of exposures within a batch does not matter."""
    gaps = np.cumsum(rng.exponential(1.0, count + 1))
    uniforms: np.ndarray = gaps[:-1] / gaps[-1]
    return uniforms


@dataclass(frozen=True)
class Traffic:
    exposures_per_minute: float = 10_000
    minutes_per_look: float = 5
    pool_users: int = 1_000_000
    min_exposures: int = 40_000
    max_minutes: float = 3 * 24 * 60
    steps: tuple[float, ...] = DEFAULT_STEPS


@dataclass
class ArmCounters:
    """Per-user counts since the rollout began, and this step's exposures and users."""

    totals: ArmTotals
    exposures: np.ndarray
    clicks: np.ndarray
    step_seen: np.ndarray
    step_exposures: int = 0
    step_users: int = 0

    @classmethod
    def start(cls, arm: str, users: int) -> ArmCounters:
        return cls(ArmTotals.empty(arm), np.zeros(users, np.int64), np.zeros(users, np.int64),
                   np.full(users, -1, np.int64))

    def add(self, who: np.ndarray, clicked: np.ndarray, step: int) -> None:
        """One batch of this arm's exposures: `who` sorted by user, `clicked` beside it."""
        if len(who) == 0:
            return
        starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        touched = who[starts]
        new_exposures = np.diff(np.r_[starts, len(who)])
        new_clicks = np.add.reduceat(clicked.astype(np.int64), starts)
        self.totals = self.totals.updated(self.exposures[touched], self.clicks[touched],
                                          new_exposures, new_clicks)
        self.exposures[touched] += new_exposures
        self.clicks[touched] += new_clicks
        self.step_users += int((self.step_seen[touched] != step).sum())
        self.step_seen[touched] = step
        self.step_exposures += len(who)

    def next_step(self) -> None:
        self.step_exposures = self.step_users = 0


@dataclass
class RolloutRun:
    outcome: str = "timed out"          # rolled back | complete | timed out
    share_at_end: float = 0.0           # the treatment's share when it ended
    minutes: float = 0.0
    treatment_exposures: int = 0
    srm_holds: int = 0
    interval_missed_truth: bool = False  # the always-valid interval excluded the truth once
    reasons: list[str] = field(default_factory=list)


def simulate_rollout(seed: int, lift: float, guardrail: Guardrail,
                     traffic: Traffic = Traffic()) -> RolloutRun:
    """One rollout of a treatment whose true relative click-through lift is `lift`."""
    rng = np.random.default_rng(seed)
    people = population(rng, traffic.pool_users)
    draw_user = np.cumsum(people.activity)
    treatment = ArmCounters.start("treatment", traffic.pool_users)
    control = ArmCounters.start("control", traffic.pool_users)
    run, step, minute = RolloutRun(), 0, 0.0
    while minute < traffic.max_minutes:
        minute += traffic.minutes_per_look
        share = traffic.steps[step] / 100
        count = rng.poisson(traffic.exposures_per_minute * traffic.minutes_per_look)
        who = np.searchsorted(draw_user, sorted_uniforms(rng, count) * draw_user[-1])
        bucket = people.bucket[who]
        for arm, chosen, factor in ((treatment, bucket < share, 1 + lift),
                                    (control, bucket >= max(CONTROL_RANGE, share), 1.0)):
            users = who[chosen]
            arm.add(users, rng.random(len(users)) < people.ctr[users] * factor, step)
        decision = look(traffic, step, guardrail, treatment, control, lift, run)
        if decision.action == "advance":
            step += 1
            treatment.next_step()
            control.next_step()
        elif decision.action in ("roll_back", "complete"):
            run.outcome = "rolled back" if decision.action == "roll_back" else "complete"
            break
    run.share_at_end, run.minutes = traffic.steps[step], minute
    run.treatment_exposures = treatment.totals.exposures
    return run


def look(traffic: Traffic, step: int, guardrail: Guardrail, treatment: ArmCounters,
         control: ArmCounters, lift: float, run: RolloutRun) -> RampDecision:
    check = check_guardrail(guardrail, control.totals, treatment.totals)
    if not math.isnan(check.relative_lift) and not check.low <= lift <= check.high:
        run.interval_missed_truth = True
    share = traffic.steps[step]
    ratio = check_sample_ratio([treatment.step_users, control.step_users],
                               [share, 100 * (1 - CONTROL_RANGE)])
    decision = decide_ramp(RolloutState(traffic.steps, step, treatment.step_exposures,
                                        control.step_exposures, traffic.min_exposures,
                                        (check,), ratio))
    if decision.action == "hold" and ratio.mismatch:
        run.srm_holds += 1
    if decision.action != "hold":
        run.reasons.append(decision.reason)
    return decision
