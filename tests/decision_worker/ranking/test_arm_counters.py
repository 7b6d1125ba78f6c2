"""The arm counters' script, on a real Redis: on any sequence of exposures, clicks and
conversions it keeps the sums `ArmTotals.updated` computes (and the totals of the users' own
counts) for both ratio metrics, over the placements and per placement, in each step and over
all steps; a click or conversion before any exposure in a scope is not counted there; a
marked batch counts once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.keys import ARM_COUNTERS_TTL_S, EXPERIMENTS, arm_totals_key, arm_users_key
from decision_worker.learning.experiments.arm_figures import read_counts, read_totals
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
PLACEMENTS = ("hero", "cta")
METRICS = ("click_through", "conversion")
ARMS = ("control", "treatment")


@dataclass(frozen=True)
class Engagement:  # what the worker's batch collects (online/experiment_arms.ArmEngagement)
    experiment: str
    arm: str
    tag: str
    placement: str
    kind: str


# (user, placement, exposures, clicks, conversions, step): steps never go back, as an
# experiment's do; a change may carry several kinds at once, as a batch's do
Change = tuple[int, int, int, int, int, int]
changes = st.lists(st.tuples(st.integers(0, USERS - 1), st.integers(0, 1), st.integers(0, 2),
                             st.integers(0, 2), st.integers(0, 1), st.integers(0, 2)),
                   max_size=50).map(lambda cs: [(*c[:5], s) for c, s in
                                                zip(cs, sorted(c[5] for c in cs),
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


Expected = dict[tuple[str | None, str, str], ArmTotals]  # (placement, metric, arm) → totals


def expected(cs: list[Change], bounds: list[int], scope: int | str) -> Expected:
    """Fold ArmTotals.updated over the batches, per placement scope (None: all placements)
    and metric; a user's clicks and conversions count only once they have an exposure in
    the scope. Checked against the totals of the users' final counts."""
    where: tuple[str | None, ...] = (None, *PLACEMENTS)
    x = {p: np.zeros(USERS, np.int64) for p in where}
    y = {(p, m): np.zeros(USERS, np.int64) for p in where for m in METRICS}
    totals = {(p, m, arm): ArmTotals.empty(arm) for p in where for m in METRICS for arm in ARMS}
    for a, b in zip(bounds, bounds[1:], strict=False):
        x0 = {p: v.copy() for p, v in x.items()}
        y0 = {k: v.copy() for k, v in y.items()}
        for user, placement, dx, clicks, conversions, step in cs[a:b]:
            if scope != "all" and step != scope:
                continue
            for p in (None, PLACEMENTS[placement]):
                x[p][user] += dx
                if x[p][user] > 0:
                    y[(p, "click_through")][user] += clicks
                    y[(p, "conversion")][user] += conversions
        for p, m, arm in totals:
            mine = np.array([arm_of(u) == arm for u in range(USERS)])
            totals[(p, m, arm)] = totals[(p, m, arm)].updated(
                x0[p][mine], y0[(p, m)][mine], (x[p] - x0[p])[mine],
                (y[(p, m)] - y0[(p, m)])[mine])
    for p, m, arm in totals:
        mine = np.array([arm_of(u) == arm for u in range(USERS)])
        assert totals[(p, m, arm)] == ArmTotals.from_users(arm, x[p][mine], y[(p, m)][mine])
    return totals


def stored(redis: Redis, scope: int | str) -> Expected:
    counts = read_counts(redis, EXPERIMENT, scope)
    out: Expected = {}
    for m in METRICS:
        for arm in ARMS:
            out[(None, m, arm)] = counts.overall[arm].of(m)
            for p in PLACEMENTS:
                by_arm = counts.placements.get(p)
                out[(p, m, arm)] = by_arm[arm].of(m) if by_arm else ArmTotals.empty(arm)
    assert set(counts.placements) <= set(PLACEMENTS)
    return out


@settings(max_examples=80, deadline=None)
@given(cs=changes, cut_points=st.lists(st.integers(0, 50), max_size=4))
def test_the_script_keeps_the_sums_of_arm_totals_per_placement_and_metric(
        redis_url: str, cs: list[Change], cut_points: list[int]) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushall()
    bounds = [0, *sorted({c for c in cut_points if 0 < c < len(cs)}), len(cs)]
    batches = [[CounterChange(EXPERIMENT, step, arm_of(user), f"u{user}", PLACEMENTS[p],
                              exposures=dx, clicks=dy, conversions=dz)
                for user, p, dx, dy, dz, step in cs[a:b]]
               for a, b in zip(bounds, bounds[1:], strict=False)]
    apply_in_batches(redis_url, batches)
    for scope in (0, 1, 2, "all"):
        want = expected(cs, bounds, scope)
        assert stored(redis, scope) == want, scope
        for m in METRICS:
            assert read_totals(redis, EXPERIMENT, scope, metric=m) == {
                arm: want[(None, m, arm)] for arm in ARMS}
    redis.close()


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_a_click_before_any_exposure_is_not_counted_and_first_exposures_are_flagged(
        redis_url: str, redis: Redis) -> None:
    def change(step: int, tag: str, placement: str, exposures: int = 0, clicks: int = 0,
               conversions: int = 0) -> CounterChange:
        return CounterChange(EXPERIMENT, step, "control", tag, placement, exposures, clicks,
                             conversions)

    async def scenario() -> list[list[bool]]:
        client = AsyncRedis.from_url(redis_url)
        out = [await apply_changes(client, [change(0, "a", "hero", clicks=1, conversions=1)]),
               await apply_changes(client, [change(0, "a", "hero", 2),
                                            change(0, "b", "hero", 1),
                                            change(0, "a", "cta", 1)]),
               await apply_changes(client, [change(0, "a", "hero", 1, clicks=1),
                                            change(0, "a", "cta", conversions=1),
                                            change(1, "a", "hero", 1)])]
        await client.aclose()
        return out

    # a's second placement in a step is not a first exposure: one per user and step
    assert run(scenario()) == [[False], [True, True, False], [False, False, True]]
    step0 = read_counts(redis, EXPERIMENT, 0)
    assert step0.overall["control"].of("click_through") == ArmTotals.from_users(
        "control", np.array([4, 1]), np.array([1, 0]))
    assert step0.overall["control"].of("conversion") == ArmTotals.from_users(
        "control", np.array([4, 1]), np.array([1, 0]))
    hero, cta = step0.placements["hero"]["control"], step0.placements["cta"]["control"]
    assert hero.of("click_through") == ArmTotals.from_users("control", np.array([3, 1]),
                                                            np.array([1, 0]))
    assert hero.conversions == 0 and cta.conversions == 1
    assert cta.of("conversion") == ArmTotals.from_users("control", np.array([1]),
                                                        np.array([1]))
    assert step0.placements["cta"]["treatment"].of("click_through") == ArmTotals.empty(
        "treatment")
    assert read_totals(redis, EXPERIMENT, "all")["control"] == ArmTotals.from_users(
        "control", np.array([5, 1]), np.array([1, 0]))
    assert redis.hget(arm_users_key(EXPERIMENT, "all"), "a") == b"5,1,1;hero=4,1,0;cta=1,0,1"
    assert redis.hget(arm_users_key(EXPERIMENT, 1), "a") == b"1,0,0;hero=1,0,0"
    for key in (arm_users_key(EXPERIMENT, 0), arm_totals_key(EXPERIMENT, "all", "control")):
        assert ARM_COUNTERS_TTL_S - 5 < redis.ttl(key) <= ARM_COUNTERS_TTL_S


def test_a_users_counts_from_before_placements_and_conversions_read_as_no_conversion(
        redis_url: str, redis: Redis) -> None:
    """A field written by the script before this one ("x,y") keeps counting."""
    redis.hset(arm_users_key(EXPERIMENT, 0), "a", "2,1")
    redis.hset(arm_totals_key(EXPERIMENT, 0, "control"), mapping={
        "users": 1, "exposures": 2, "clicks": 1, "exposures_squared": 4, "clicks_squared": 1,
        "exposures_times_clicks": 2})

    async def scenario() -> None:
        client = AsyncRedis.from_url(redis_url)
        await apply_changes(client, [CounterChange(EXPERIMENT, 0, "control", "a", "hero", 1,
                                                   0, 1)])
        await client.aclose()

    run(scenario())
    assert read_totals(redis, EXPERIMENT, 0)["control"] == ArmTotals.from_users(
        "control", np.array([3]), np.array([1]))
    assert read_totals(redis, EXPERIMENT, 0, metric="conversion")["control"] == \
        ArmTotals.from_users("control", np.array([3]), np.array([1]))
    assert redis.hget(arm_users_key(EXPERIMENT, 0), "a") == b"3,1,1;hero=1,0,1"


def test_engagement_counts_clicks_and_conversions_in_the_current_step_of_active_experiments(
        redis_url: str, redis: Redis) -> None:
    ramping = Experiment(EXPERIMENT, "m-new", "m-old", status="ramping", step_index=1)
    stopped = Experiment("rollout-0", "m-new", "m-old", status="stopped")
    redis.hset(EXPERIMENTS, mapping={EXPERIMENT: ramping.dumps(), "rollout-0": stopped.dumps(),
                                     "broken": b"{"})

    async def scenario() -> int:
        client = AsyncRedis.from_url(redis_url)
        await apply_changes(client, [CounterChange(EXPERIMENT, 1, "treatment", "a", "hero", 1),
                                     CounterChange("rollout-0", 0, "control", "a", "hero", 1)])
        counted = await record_engagement(client, [
            Engagement(EXPERIMENT, "treatment", "a", "hero", "click"),
            Engagement(EXPERIMENT, "treatment", "a", "hero", "click"),
            Engagement(EXPERIMENT, "treatment", "a", "hero", "conversion"),
            Engagement(EXPERIMENT, "treatment", "a", "cta", "conversion"),  # no exposure there
            Engagement(EXPERIMENT, "treatment", "a", "hero", "view"),
            Engagement("rollout-0", "control", "a", "hero", "click"),
            Engagement("unknown", "control", "a", "hero", "click"),
        ], ExperimentSteps())
        await client.aclose()
        return counted

    assert run(scenario()) == 4
    for scope in (1, "all"):
        counts = read_counts(redis, EXPERIMENT, scope)
        treated = counts.overall["treatment"]
        assert (treated.of("click_through").clicks, treated.conversions) == (2, 2)
        assert list(counts.placements) == ["hero"]  # the cta conversion had no exposure
        hero = counts.placements["hero"]["treatment"]
        assert (hero.of("click_through").clicks, hero.conversions) == (2, 1)
    assert read_totals(redis, "rollout-0", "all")["control"].clicks == 0
