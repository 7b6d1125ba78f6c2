"""Arm counters: per experiment, step and arm, the sums the delta method needs (ArmTotals in
learning/experiments/arm_totals.py: users, exposures, clicks, exposures², clicks²,
exposures·clicks), kept by one Lua script as exposures and clicks arrive.

A user adds to the sums through their own pair (x exposures, y clicks), kept in a per-user
hash, so the script reads the pair, applies the change and adds the difference of each sum:
an exposure adds 1 to exposures, 2x + 1 to exposures² and y to exposures·clicks (and 1 to
users when x was 0); a click adds 1 to clicks, 2y + 1 to clicks² and x to exposures·clicks.
A click of a user with no exposure in that scope is not counted (the user is not in the
ratio's denominator). Every change is applied twice, to the current step and to "all" (the
whole experiment), in one script, so the two scopes never disagree. All keys share the hash
tag `{ep:exp}`: one Cluster slot, one script.

Exposures count in the experiment's step at the time they are counted (read from the stored
experiment, cached `STEP_CACHE_S`); clicks likewise. Only active experiments (shadow,
ramping) count, and the comparison of personalization with the holdout, in step 0.
`learning/experiments/arm_figures.read_totals` reads the sums back (arms control and
treatment; the comparison's are holdout and treatment).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from decision_worker.keys import (
    ARM_COUNTERS_TTL_S,
    EXPERIMENTS,
    EXPOSURES_APPLIED_TTL_S,
    arm_totals_key,
    arm_users_key,
)
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
COUNTED_KINDS = ("click",)  # what the counters keep per user: click-through's numerator
_NO_MARKER = "{ep:exp}:no-marker"

# KEYS[1]: the once-marker; then per change: users of the step, users of "all", totals of the
# step, totals of "all". ARGV: use the marker (1/0), TTL, marker TTL; then per change: user
# tag, exposures added, clicks added. Returns one character a change: "1" when it was the
# user's first exposure in the step. With the marker set already, returns what it holds.
_APPLY = """
local use_marker = ARGV[1] == '1'
if use_marker then
  local done = redis.call('GET', KEYS[1])
  if done then return done end
end
local sums, order, touched, firsts = {}, {}, {}, {}
local function add(key, field, delta)
  local t = sums[key]
  if not t then t = {}; sums[key] = t; order[#order + 1] = key end
  t[field] = (t[field] or 0) + delta
end
local function apply(ukey, tkey, tag, dx, dy)
  local v = redis.call('HGET', ukey, tag)
  local x, y = 0, 0
  if v then
    local c = string.find(v, ',', 1, true)
    if c then
      x = tonumber(string.sub(v, 1, c - 1)) or 0
      y = tonumber(string.sub(v, c + 1)) or 0
    end
  end
  local x1, y1 = x + dx, y
  if x1 > 0 then y1 = y + dy end
  if x1 == x and y1 == y then return x end
  if x == 0 and x1 > 0 then add(tkey, 'users', 1) end
  add(tkey, 'exposures', x1 - x)
  add(tkey, 'clicks', y1 - y)
  add(tkey, 'exposures_squared', x1 * x1 - x * x)
  add(tkey, 'clicks_squared', y1 * y1 - y * y)
  add(tkey, 'exposures_times_clicks', x1 * y1 - x * y)
  redis.call('HSET', ukey, tag, string.format('%d,%d', x1, y1))
  touched[ukey] = true
  touched[tkey] = true
  return x
end
for i = 0, (#KEYS - 1) / 4 - 1 do
  local k, a = 2 + 4 * i, 4 + 3 * i
  local tag, dx, dy = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local before = apply(KEYS[k], KEYS[k + 2], tag, dx, dy)
  apply(KEYS[k + 1], KEYS[k + 3], tag, dx, dy)
  if dx > 0 and before == 0 then firsts[#firsts + 1] = '1' else firsts[#firsts + 1] = '0' end
end
for _, key in ipairs(order) do
  for field, delta in pairs(sums[key]) do
    if delta ~= 0 then redis.call('HINCRBY', key, field, string.format('%d', delta)) end
  end
end
for key in pairs(touched) do redis.call('EXPIRE', key, ARGV[2]) end
local result = table.concat(firsts)
if use_marker then redis.call('SET', KEYS[1], result, 'EX', ARGV[3]) end
return result
"""


@dataclass(frozen=True, slots=True)
class CounterChange:
    """Exposures and clicks to add for one user in one arm of one step."""

    experiment: str
    step: int
    arm: str
    tag: str
    exposures: int = 0
    clicks: int = 0


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
    in its step. With `once` (a marker key), a second call with the same key changes
    nothing and returns what the first returned: a redelivered batch counts once."""
    if not changes:
        return []
    keys = [once or _NO_MARKER]
    args: list[Any] = ["1" if once else "0", ARM_COUNTERS_TTL_S, EXPOSURES_APPLIED_TTL_S]
    for c in changes:
        keys += [arm_users_key(c.experiment, c.step), arm_users_key(c.experiment, "all"),
                 arm_totals_key(c.experiment, c.step, c.arm),
                 arm_totals_key(c.experiment, "all", c.arm)]
        args += [c.tag, c.exposures, c.clicks]
    script = redis.register_script(_APPLY)
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
    """Count the clicks among `items` in their experiment's current step (and "all"); other
    kinds, and experiments not active, are skipped. Returns the clicks passed to the script
    (a click of a user with no exposure in the step is then not counted by it)."""
    experiments = await (steps or ExperimentSteps(0)).current(redis)
    clicks: dict[tuple[str, int, str, str], int] = {}
    for item in items:
        experiment = experiments.get(item.experiment)
        if item.kind not in COUNTED_KINDS or experiment is None or not experiment.active:
            continue
        key = (item.experiment, experiment.step_index, item.arm, item.tag)
        clicks[key] = clicks.get(key, 0) + 1
    changes = [CounterChange(e, step, arm, tag, clicks=n)
               for (e, step, arm, tag), n in clicks.items()]
    await apply_changes(redis, changes, once)
    return sum(clicks.values())
