"""The arm counters' script, on a real Redis: on any sequence of exposures and clicks it keeps
the sums `ArmTotals.updated` computes (and the totals of the users' own counts), in each step
and over all steps; a click before any exposure is not counted; a marked batch counts once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.keys import ARM_COUNTERS_TTL_S, EXPERIMENTS, arm_totals_key, arm_users_key
from decision_worker.learning.experiments.arm_figures import read_totals
from decision_worker.learning.experiments.arm_totals import ArmTotals
from decision_worker.ranking.arm_counters import (
    CounterChange,
    ExperimentSteps,
    apply_changes,
    record_engagement,
)
from decision_worker.ranking.experiment import Experiment

EXPERIMENT = "rollout-1"
USERS = 6


@dataclass(frozen=True)
class Engagement:  # what the worker's batch collects (online/experiment_arms.ArmEngagement)
    experiment: str
    arm: str
    tag: str
    placement: str
    kind: str

# (user, is a click, step): steps never go back, as an experiment's do
events = st.lists(st.tuples(st.integers(0, USERS - 1), st.booleans(), st.integers(0, 2)),
                  max_size=60).map(lambda evs: [(u, c, s) for (u, c, _), s in
                                                zip(evs, sorted(e[2] for e in evs),
                                                    strict=True)])


def arm_of(user: int) -> str:
    return "treatment" if user % 2 else "control"


def apply_in_batches(url: str, batches: list[list[CounterChange]]) -> None:
    async def run() -> None:
        client = AsyncRedis.from_url(url)
        for i, batch in enumerate(batches):
            await apply_changes(client, batch, once=f"{{ep:exp}}:applied:test-{i}")
            await apply_changes(client, batch, once=f"{{ep:exp}}:applied:test-{i}")  # again
        await client.aclose()

    asyncio.run(run())


def expected(evs: list[tuple[int, bool, int]], cuts: list[int],
             scope: int | str) -> dict[str, ArmTotals]:
    """Fold ArmTotals.updated over the batches, each user's clicks counted only once they
    have an exposure in the scope."""
    x, y = np.zeros(USERS, np.int64), np.zeros(USERS, np.int64)
    totals = {arm: ArmTotals.empty(arm) for arm in ("control", "treatment")}
    for batch in np.split(np.array(evs, dtype=object).reshape(-1, 3), cuts) if evs else []:
        x0, y0 = x.copy(), y.copy()
        for user, click, step in batch:
            if scope != "all" and step != scope:
                continue
            if not click:
                x[user] += 1
            elif x[user] > 0:
                y[user] += 1
        for arm in totals:
            mine = np.array([arm_of(u) == arm for u in range(USERS)])
            totals[arm] = totals[arm].updated(x0[mine], y0[mine], (x - x0)[mine],
                                              (y - y0)[mine])
    for arm in totals:
        mine = np.array([arm_of(u) == arm for u in range(USERS)])
        assert totals[arm] == ArmTotals.from_users(arm, x[mine], y[mine])
    return totals


@settings(max_examples=60, deadline=None)
@given(evs=events, cut_points=st.lists(st.integers(0, 60), max_size=4))
def test_the_script_keeps_the_sums_of_arm_totals(redis_url: str, evs, cut_points) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushall()
    cuts = sorted({c for c in cut_points if 0 < c < len(evs)})
    bounds = [0, *cuts, len(evs)]
    batches = [[CounterChange(EXPERIMENT, step, arm_of(user), f"u{user}",
                              exposures=0 if click else 1, clicks=1 if click else 0)
                for user, click, step in evs[a:b]] for a, b in zip(bounds, bounds[1:],
                                                                     strict=False)]
    apply_in_batches(redis_url, batches)
    for scope in (0, 1, 2, "all"):
        assert read_totals(redis, EXPERIMENT, scope) == expected(evs, cuts, scope), scope
    redis.close()


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_a_click_before_any_exposure_is_not_counted_and_first_exposures_are_flagged(
        redis_url: str, redis: Redis) -> None:
    async def scenario() -> list[list[bool]]:
        client = AsyncRedis.from_url(redis_url)
        out = [await apply_changes(client, [CounterChange(EXPERIMENT, 0, "control", "a",
                                                          clicks=1)]),
               await apply_changes(client, [CounterChange(EXPERIMENT, 0, "control", "a", 2),
                                            CounterChange(EXPERIMENT, 0, "control", "b", 1)]),
               await apply_changes(client, [CounterChange(EXPERIMENT, 0, "control", "a", 1,
                                                          clicks=1),
                                            CounterChange(EXPERIMENT, 1, "control", "a", 1)])]
        await client.aclose()
        return out

    assert run(scenario()) == [[False], [True, True], [False, True]]
    assert read_totals(redis, EXPERIMENT, 0)["control"] == ArmTotals.from_users(
        "control", np.array([3, 1]), np.array([1, 0]))
    assert read_totals(redis, EXPERIMENT, "all")["control"] == ArmTotals.from_users(
        "control", np.array([4, 1]), np.array([1, 0]))
    assert redis.hget(arm_users_key(EXPERIMENT, "all"), "a") == b"4,1"
    for key in (arm_users_key(EXPERIMENT, 0), arm_totals_key(EXPERIMENT, "all", "control")):
        assert ARM_COUNTERS_TTL_S - 5 < redis.ttl(key) <= ARM_COUNTERS_TTL_S


def test_engagement_counts_clicks_in_the_current_step_of_active_experiments(
        redis_url: str, redis: Redis) -> None:
    ramping = Experiment(EXPERIMENT, "m-new", "m-old", status="ramping", step_index=1)
    stopped = Experiment("rollout-0", "m-new", "m-old", status="stopped")
    redis.hset(EXPERIMENTS, mapping={EXPERIMENT: ramping.dumps(), "rollout-0": stopped.dumps(),
                                     "broken": b"{"})

    async def scenario() -> int:
        client = AsyncRedis.from_url(redis_url)
        await apply_changes(client, [CounterChange(EXPERIMENT, 1, "treatment", "a", 1),
                                     CounterChange("rollout-0", 0, "control", "a", 1)])
        counted = await record_engagement(client, [
            Engagement(EXPERIMENT, "treatment", "a", "hero", "click"),
            Engagement(EXPERIMENT, "treatment", "a", "hero", "click"),
            Engagement(EXPERIMENT, "treatment", "a", "hero", "conversion"),
            Engagement("rollout-0", "control", "a", "hero", "click"),
            Engagement("unknown", "control", "a", "hero", "click"),
        ], ExperimentSteps())
        await client.aclose()
        return counted

    assert run(scenario()) == 2
    assert read_totals(redis, EXPERIMENT, 1)["treatment"].clicks == 2
    assert read_totals(redis, EXPERIMENT, "all")["treatment"].clicks == 2
    assert read_totals(redis, "rollout-0", "all")["control"].clicks == 0
