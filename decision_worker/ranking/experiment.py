"""An experiment: one model rollout, what the worker assigns users by and the controller
moves step by step. One home for the shape, its checks and the assignment rule; the worker
(online/), the controller and the analysis (learning/experiments/) all read it from here.

Stored as JSON in the Redis hash `EXPERIMENTS` (field: the experiment's id). The controller
is its only writer; workers re-read it every few seconds.

Assignment (`arm_of`): GrowthBook hash v2 of the user's tag with the experiment's seed
(edge_functions/bucketing.py, the holdout's function and vectors) gives a bucket in [0, 1).
The treatment is the lowest `share` of the range and the control its upper half, for the
whole rollout; users in between are outside the experiment and served production as usual.
Each step only widens the treatment's range, so a user once in the treatment stays there,
and nobody moves from control to treatment (steps between 50 % and 100 % are refused for
that reason; 100 % ends the experiment). The persistent holdout is decided first and stays
outside every experiment.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import orjson

from decision_worker.errors import WorkerError
from edge_functions.bucketing import gbhash
from edge_functions.errors import InvalidIdentifier
from edge_functions.identifiers import check_id

TREATMENT = "treatment"
CONTROL = "control"
HOLDOUT = "holdout"
# The lift of personalization itself, measured for as long as edgepick runs: the persistent
# holdout (the lowest `holdout_share` of the holdout hash, served the default) against the
# band just above it, an equal share of users served as usual. Their decisions carry this
# experiment (arms `holdout` and `treatment`) so the edge logs their exposures; the rest of
# the traffic logs none. A user of the band inside a rollout's arm counts for the rollout.
PERSONALIZATION = "personalization"
CONTROL_FROM = 0.5  # the control is the upper half of the hash range at every step
DEFAULT_STEPS = (1.0, 5.0, 20.0, 50.0, 100.0)

Status = Literal["shadow", "ramping", "complete", "rolled_back", "stopped"]
ACTIVE: tuple[Status, ...] = ("shadow", "ramping")
# The ratio metrics the arm counters keep per user: clicks and conversions per exposure
GUARDRAIL_METRICS = ("click_through", "conversion")


class ExperimentError(WorkerError):
    """An experiment that cannot be run as given: the message names what is wrong."""

    http_status = 400
    error_code = "invalid_experiment"


@dataclass(frozen=True)
class GuardrailRule:
    """Roll back when `metric` in the treatment is worse than control's by more than
    `max_drop` (relative, 0.05 = 5 %), with significance."""

    metric: str
    max_drop: float

    def __post_init__(self) -> None:
        if self.metric not in GUARDRAIL_METRICS:
            raise ExperimentError(f"guardrail metric {self.metric!r} is unknown: use one of "
                                  + ", ".join(GUARDRAIL_METRICS))
        if not (math.isfinite(self.max_drop) and 0 <= self.max_drop < 1):
            raise ExperimentError(f"guardrail {self.metric}: the largest drop must be a "
                                  f"share in [0, 1), got {self.max_drop}")


@dataclass(frozen=True)
class Experiment:
    id: str
    treatment_model: str  # the candidate's version in the registry
    control_model: str | None  # production when the rollout started (None: the baseline)
    seed: str = ""  # hash seed; "" means the id
    name: str = ""
    placements: tuple[str, ...] = ()  # () = every placement
    steps: tuple[float, ...] = DEFAULT_STEPS  # the treatment's share at each step, in %
    step_index: int = 0
    status: Status = "shadow"
    shadow_share: float = 1.0  # of decisions scored by the treatment while in shadow
    shadow_seconds: float = 3600.0  # how long the shadow runs before the first step
    # per arm per step, before a step may advance; with the guardrail below, what
    # benchmarks/rollout_statistics.py measured to roll a 10 % worse model back before 20 %
    # in 50 of 50 seeds (15,000 exposures: 41 of 50, short of the bar)
    min_exposures: int = 40_000
    guardrails: tuple[GuardrailRule, ...] = (GuardrailRule("click_through", 0.02),)
    started_at: float = 0.0
    step_started_at: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            check_id("experiment", self.id)
            check_id("model", self.treatment_model)
            if self.control_model is not None:
                check_id("model", self.control_model)
            for placement in self.placements:
                check_id("placement", placement)
        except InvalidIdentifier as e:
            raise ExperimentError(str(e)) from e
        if self.treatment_model == self.control_model:
            raise ExperimentError(f"model {self.treatment_model} is already production")
        check_steps(self.steps)
        if not 0 <= self.step_index < len(self.steps):
            raise ExperimentError(f"step {self.step_index} is outside {len(self.steps)} steps")
        if not 0 < self.shadow_share <= 1:
            raise ExperimentError(f"shadow share must be in (0, 1], got {self.shadow_share}")
        if not (math.isfinite(self.shadow_seconds) and self.shadow_seconds >= 0):
            raise ExperimentError(f"shadow seconds must be 0 or more, got {self.shadow_seconds}")
        if self.min_exposures < 1:
            raise ExperimentError("--min-exposures must be at least 1")
        if len({g.metric for g in self.guardrails}) != len(self.guardrails):
            raise ExperimentError("a guardrail metric is named twice")

    @property
    def hash_seed(self) -> str:
        return self.seed or self.id

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def share(self) -> float:
        """The treatment's share of traffic now, in per cent (0 unless ramping)."""
        return self.steps[self.step_index] if self.status == "ramping" else 0.0

    def covers(self, placement: str) -> bool:
        return not self.placements or placement in self.placements

    def with_(self, **changes: Any) -> Experiment:
        return replace(self, **changes)

    def dumps(self) -> bytes:
        doc = asdict(self)
        doc["guardrails"] = [[g.metric, g.max_drop] for g in self.guardrails]
        return orjson.dumps(doc)

    @classmethod
    def loads(cls, raw: bytes | str) -> Experiment:
        try:
            doc = orjson.loads(raw)
            doc["placements"] = tuple(doc.get("placements", ()))
            doc["steps"] = tuple(float(s) for s in doc.get("steps", DEFAULT_STEPS))
            doc["guardrails"] = tuple(GuardrailRule(str(m), float(d))
                                      for m, d in doc.get("guardrails", ()))
            return cls(**doc)
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as e:
            raise ExperimentError(f"stored experiment does not load: {e}") from e


def check_steps(steps: tuple[float, ...]) -> None:
    """Steps increase from above 0 to 100 %; none between 50 and 100, which would move users
    from the control (upper half of the range) into the treatment."""
    if not steps or steps[-1] != 100 or steps[0] <= 0 or any(
            not math.isfinite(a) or a >= b for a, b in zip(steps, steps[1:], strict=False)):
        raise ExperimentError(f"steps must increase from above 0 to 100 %, got "
                              f"{','.join(f'{s:g}' for s in steps)}")
    beyond_half = [s for s in steps[:-1] if s > 100 * CONTROL_FROM]
    if beyond_half:
        raise ExperimentError(f"step {beyond_half[0]:g} % would take users from the control "
                              f"(the upper {100 * (1 - CONTROL_FROM):g} %): steps before 100 "
                              f"stop at {100 * CONTROL_FROM:g} %")


def personalization_arm(holdout_hash: float | None, holdout_share: float) -> str | None:
    """`holdout`, `treatment` (the equal band above the holdout) or None: not compared."""
    if holdout_hash is None or holdout_share <= 0:
        return None
    if holdout_hash < holdout_share:
        return HOLDOUT
    return TREATMENT if holdout_hash < 2 * holdout_share else None


def bucket_of(experiment: Experiment, user_tag: str) -> float:
    """Where the user falls in this experiment's hash range (GrowthBook hash v2)."""
    return gbhash(experiment.hash_seed, user_tag)


def arm_of(bucket: float, share_percent: float) -> str | None:
    """The arm of a bucket at a treatment share (per cent), or None: outside the experiment."""
    if bucket < share_percent / 100:
        return TREATMENT
    if bucket >= CONTROL_FROM:
        return CONTROL
    return None


def overlapping(candidate: Experiment, running: list[Experiment]) -> Experiment | None:
    """A running experiment that shares a placement with `candidate` (one per placement)."""
    for other in running:
        if other.id == candidate.id or not other.active:
            continue
        if not candidate.placements or not other.placements or \
                set(candidate.placements) & set(other.placements):
            return other
    return None
