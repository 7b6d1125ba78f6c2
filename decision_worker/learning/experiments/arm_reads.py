"""Reading an experiment's arm counters back (kept by ranking/arm_counters.py; the hash
layout is ranking/arm_counter_script.py's): per arm, in one step or over all steps ("all"),
the sums of each ratio metric over the experiment's placements and on each placement.

Click-through and the conversion rate share users, exposures and exposures²; each has its own
y sums (clicks, conversions). `ArmCounts.of(metric)` gives the metric's ArmTotals, y in the
`clicks` fields for both (the arithmetic of arm_totals.py, lift.py and guardrail.py does not
care which events y counts)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from redis import Redis

from decision_worker.keys import arm_totals_key
from decision_worker.learning.experiments.arm_totals import ArmTotals
from decision_worker.ranking.experiment import CONTROL, TREATMENT

ARMS = (CONTROL, TREATMENT)
# metric → the events its ratio counts (the name of its y sums in the counters); the
# metrics a guardrail may name (ranking/experiment.GUARDRAIL_METRICS)
METRIC_EVENTS = {"click_through": "clicks", "conversion": "conversions"}
_CLICK_SUMS = [f.name for f in fields(ArmTotals) if f.name != "arm"]


@dataclass(frozen=True)
class ArmCounts:
    """One arm's sums in one scope, over the experiment's placements or on one placement."""

    arm: str
    sums: dict[str, int] = field(default_factory=dict)

    def of(self, metric: str) -> ArmTotals:
        """The metric's totals: x exposures, y its events (clicks or conversions)."""
        y = METRIC_EVENTS[metric]
        s = self.sums
        return ArmTotals(self.arm, s.get("users", 0), s.get("exposures", 0), s.get(y, 0),
                         s.get("exposures_squared", 0), s.get(f"{y}_squared", 0),
                         s.get(f"exposures_times_{y}", 0))

    @property
    def conversions(self) -> int:
        return self.sums.get("conversions", 0)


@dataclass(frozen=True)
class ScopeCounts:
    """Every arm's counts in one scope: over all placements, and per placement (sorted; an
    arm with nothing counted on a placement another arm has gets empty counts)."""

    overall: dict[str, ArmCounts]
    placements: dict[str, dict[str, ArmCounts]]


def read_counts(redis: Redis, experiment: str, step: int | str,
                arms: tuple[str, str] = ARMS) -> ScopeCounts:
    """Both arms' counts in one step (or "all"), one HGETALL per arm; zeros where nothing
    was counted yet."""
    with redis.pipeline(transaction=False) as pipe:
        for arm in arms:
            pipe.hgetall(arm_totals_key(experiment, step, arm))
        rows: list[dict[Any, Any]] = pipe.execute()
    overall: dict[str, dict[str, int]] = {}
    placed: dict[str, dict[str, dict[str, int]]] = {}
    for arm, row in zip(arms, rows, strict=True):
        overall[arm] = {}
        for raw_name, value in row.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            placement, _, sum_name = name.rpartition(":")
            into = placed.setdefault(placement, {}).setdefault(arm, {}) if placement \
                else overall[arm]
            into[sum_name] = int(value)
    return ScopeCounts(
        {arm: ArmCounts(arm, sums) for arm, sums in overall.items()},
        {placement: {arm: ArmCounts(arm, by_arm.get(arm, {})) for arm in arms}
         for placement, by_arm in sorted(placed.items())})


def read_totals(redis: Redis, experiment: str, step: int | str,
                arms: tuple[str, str] = ARMS, metric: str = "click_through"
                ) -> dict[str, ArmTotals]:
    """Both arms' totals of one metric over all placements, in one step (or "all"); zeros
    where nothing was counted yet."""
    y = METRIC_EVENTS[metric]
    names = [n.replace("clicks", y) for n in _CLICK_SUMS]
    with redis.pipeline(transaction=False) as pipe:
        for arm in arms:
            pipe.hmget(arm_totals_key(experiment, step, arm), names)
        rows = pipe.execute()
    return {arm: ArmTotals(arm, *(int(v or 0) for v in row))
            for arm, row in zip(arms, rows, strict=True)}
