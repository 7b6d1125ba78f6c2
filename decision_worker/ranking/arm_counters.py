"""Arm counters: per experiment, step and arm, the sums the delta method needs (ArmTotals in
learning/experiments/arm_totals.py), kept by one Lua script (ranking/arm_counter_script.py)
as exposures, clicks and conversions arrive, for the whole experiment and per placement.

Two ratio metrics share their denominator: click-through (clicks per exposure) and the
conversion rate (conversions per exposure). A user adds to the sums through their own counts
(x exposures, y clicks, z conversions; over the experiment's placements and on each
placement), kept in a per-user hash under the user's tag, so the script reads them, applies
the change and adds the difference of each sum: an exposure adds 1 to exposures, 2x + 1 to
exposures², y to exposures·clicks and z to exposures·conversions (and 1 to users when x was
0); a click adds 1 to clicks, 2y + 1 to clicks² and x to exposures·clicks; a conversion
likewise to its own three sums. A click or conversion of a user with no exposure in that
scope is not counted (the user is not in the ratio's denominator). Every change is applied
twice, to the current step and to "all" (the whole experiment), in one script, so the two
scopes never disagree; and within each, to the experiment's sums and its placement's. All
keys share the hash tag `{ep:exp}`: one Cluster slot, one script call per batch.

Exposures count in the experiment's step at the time they are counted (read from the stored
experiment, cached `STEP_CACHE_S`); clicks and conversions likewise. Only active experiments
(shadow, ramping) count, and the comparison of personalization with the holdout, in step 0.
`learning/experiments/arm_reads.py` reads the sums back (arms control and treatment; the
comparison's are holdout and treatment).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from decision_worker.keys import (
    ARM_COUNTERS_TTL_S,
    ARM_OWNERS,
    EXPERIMENTS,
    EXPOSURES_APPLIED_TTL_S,
    arm_totals_key,
    arm_users_key,
)
from decision_worker.ranking.arm_counter_script import APPLY
from decision_worker.ranking.experiment import (
    CONTROL,
    HOLDOUT,
    PERSONALIZATION,
    TREATMENT,
    Experiment,
    ExperimentError,
)

STEP_CACHE_S = 2.0
# The comparison of personalization with the persistent holdout (ranking/experiment.py):
# never stored, never ending, so it counts in step 0 (and "all"), arms holdout and treatment.
PERSONALIZATION_EXPERIMENT = Experiment(PERSONALIZATION, "personalized", None,
                                        name="Personalization vs the holdout",
                                        status="ramping")
# What the counters keep per user besides exposures: the numerators of click-through and of
# the conversion rate (ingest/message_fields.ENGAGEMENT: "Variant Clicked", "Promotion
# Clicked" → click; "Variant Converted" → conversion).
COUNTED_KINDS = ("click", "conversion")
_NO_MARKER = "{ep:exp}:no-marker"


@dataclass(frozen=True, slots=True)
class CounterChange:
    """Exposures, clicks and conversions to add for one user in one arm of one step, on one
    placement (they count for the experiment and for that placement)."""

    experiment: str
    step: int
    arm: str
    tag: str
    placement: str
    exposures: int = 0
    clicks: int = 0
    conversions: int = 0


class Engaged(Protocol):
    """A click (or other engagement) attributed to a user's arm; online code collects them
    per batch (online/experiment_arms.ArmEngagement has these fields)."""

    @property
    def experiment(self) -> str: ...
    @property
    def arm(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def placement(self) -> str: ...
    @property
    def kind(self) -> str: ...


async def apply_changes(redis: Redis, changes: Sequence[CounterChange],
                        once: str | None = None) -> list[bool]:
    """Apply the changes in one script; for each, whether it was the user's first exposure
    in its step (over all placements: of a user's changes in one step, the first applied).
    With `once` (a marker key), a second call with the same key changes nothing and returns
    what the first returned: a redelivered batch counts once."""
    if not changes:
        return []
    keys = [once or _NO_MARKER, ARM_OWNERS]
    args: list[Any] = ["1" if once else "0", ARM_COUNTERS_TTL_S, EXPOSURES_APPLIED_TTL_S]
    for c in changes:
        keys += [arm_users_key(c.experiment, c.step), arm_users_key(c.experiment, "all"),
                 arm_totals_key(c.experiment, c.step, c.arm),
                 arm_totals_key(c.experiment, "all", c.arm)]
        args += [c.tag, c.placement, c.exposures, c.clicks, c.conversions]
    script = redis.register_script(APPLY)
    reply: Any = await script(keys=keys, args=args)
    flags = reply.decode() if isinstance(reply, bytes) else str(reply)
    return [flag == "1" for flag in flags]


class ExperimentSteps:
    """The stored experiments, re-read at most every `cache_s` (one HGETALL of a few
    entries): which are active, and in which step. Unreadable entries are left out."""

    def __init__(self, cache_s: float = STEP_CACHE_S) -> None:
        self.cache_s = cache_s
        self._at = -float("inf")
        self.experiments: dict[str, Experiment] = {}

    async def current(self, redis: Redis) -> dict[str, Experiment]:
        now = time.monotonic()
        if now - self._at >= self.cache_s:
            raw: dict[Any, Any] = await redis.hgetall(EXPERIMENTS)
            self.experiments = {PERSONALIZATION: PERSONALIZATION_EXPERIMENT,
                                **dict(_loaded(raw.items()))}
            self._at = now
        return self.experiments


def arms_of(experiment: Experiment) -> tuple[str, str]:
    """The arms an experiment's exposures may name."""
    return (HOLDOUT, TREATMENT) if experiment.id == PERSONALIZATION else (CONTROL, TREATMENT)


def _loaded(items: Iterable[tuple[Any, Any]]) -> Iterable[tuple[str, Experiment]]:
    for key, value in items:
        try:
            experiment = Experiment.loads(value)
        except ExperimentError:
            continue
        name = key.decode() if isinstance(key, bytes) else str(key)
        if experiment.id == name:
            yield name, experiment


async def record_engagement(redis: Redis, items: Iterable[Engaged],
                            steps: ExperimentSteps | None = None,
                            once: str | None = None) -> int:
    """Count the clicks and conversions among `items` in their experiment's current step (and
    "all"), for the experiment and for their placement; other kinds, and experiments not
    active, are skipped. Returns the events passed to the script (one of a user with no
    exposure in the step is then not counted by it). One script call for them all."""
    experiments = await (steps or ExperimentSteps(0)).current(redis)
    counted: dict[tuple[str, int, str, str, str], list[int]] = {}
    for item in items:
        experiment = experiments.get(item.experiment)
        if item.kind not in COUNTED_KINDS or experiment is None or not experiment.active:
            continue
        key = (item.experiment, experiment.step_index, item.arm, item.tag, item.placement)
        counts = counted.setdefault(key, [0, 0])
        counts[COUNTED_KINDS.index(item.kind)] += 1
    changes = [CounterChange(e, step, arm, tag, placement, clicks=c, conversions=v)
               for (e, step, arm, tag, placement), (c, v) in counted.items()]
    await apply_changes(redis, changes, once)
    return sum(c.clicks + c.conversions for c in changes)
