"""The rollout controller: looks at every running rollout every few seconds and applies the
ramp rule (ramp.py) to it: shadow → first step once the shadow has run its time, then
advance, hold or roll back; at 100 % the rollout completes and the treatment becomes the
production model in the registry.

One controller acts at a time: it holds a lock in Redis (a token with a TTL, renewed each
look); a second one waits and takes over when the first stops renewing. Every change is a
compare-and-set of the stored experiment with its audit entry (rollout_store.py), so even a
controller that lost its lock without knowing cannot overwrite a newer state. A controller
that died mid-step leaves a consistent state, resumed by whichever controller looks next;
the one side effect outside Redis, the registry's promotion at completion, is retried until
the experiment records it (`notes.promoted`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
from redis import Redis

from decision_worker.errors import RegistryError
from decision_worker.keys import CONTROLLER_LOCK
from decision_worker.learning.experiments import audit_archive, rollout_store
from decision_worker.learning.experiments.arm_figures import (
    analysis,
    personalization_analysis,
    rollout_state,
)
from decision_worker.learning.experiments.ramp import decide_ramp
from decision_worker.learning.registry import Registry
from decision_worker.ranking.experiment import PERSONALIZATION, Experiment
from object_store.store import StoreError

log = logging.getLogger("edgepick.rollouts")
LOCK_TTL_S = 30.0
LIFT_POINTS = 500  # lift snapshots kept per experiment, for the dashboard's plot
LIFT_EVERY_S = 60.0  # at most one a minute: 500 points cover 8 hours of looks

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


def lift_key(experiment: str) -> str:
    return f"{{ep:exp}}:lift:{experiment}"


class RolloutController:
    def __init__(self, redis: Redis, registry: Registry,
                 clock: Callable[[], float] = time.time, lock_ttl_s: float = LOCK_TTL_S,
                 lift_every_s: float = LIFT_EVERY_S) -> None:
        self._redis = redis
        self._registry = registry
        self._clock = clock
        self._token = secrets.token_hex(8)
        self._lock_ttl_ms = int(lock_ttl_s * 1000)
        self._renew = redis.register_script(_RENEW)
        self._lift_every_s = lift_every_s
        self._lifted: dict[str, float] = {}  # experiment → when its lift was last kept

    def lead(self) -> bool:
        """Take or keep the lock; False while another controller holds it."""
        return bool(self._renew(keys=[CONTROLLER_LOCK], args=[self._token, self._lock_ttl_ms]))

    def release(self) -> None:
        if self._redis.get(CONTROLLER_LOCK) == self._token.encode():
            self._redis.delete(CONTROLLER_LOCK)

    def look(self) -> list[str]:
        """One look at every rollout; what changed, as audit reasons (empty when not leading)."""
        if not self.lead():
            return []
        changed = []
        if self._lift_due(PERSONALIZATION):
            self._snapshot(PERSONALIZATION, personalization_analysis(self._redis), None)
        for experiment in rollout_store.load_experiments(self._redis):
            if experiment.active:
                outcome = self._look_at(experiment)
            elif experiment.status == "complete" and not experiment.notes.get("promoted"):
                outcome = self._promote(experiment)
            else:
                continue
            if outcome:
                changed.append(f"{experiment.id}: {outcome}")
        try:  # after the transitions, so this look's are copied at once
            audit_archive.archive(self._redis, self._registry.store)
        except StoreError as e:  # kept in Redis meanwhile; the next look copies them
            log.warning("audit log not copied to the origin: %s", e)
        return changed

    def _look_at(self, experiment: Experiment) -> str | None:
        now = self._clock()
        if experiment.status == "shadow":
            if now - experiment.started_at < experiment.shadow_seconds:
                return None
            after = experiment.with_(status="ramping", step_index=0, step_started_at=now)
            why = (f"shadow ran {experiment.shadow_seconds:g} s: ramping to "
                   f"{experiment.steps[0]:g} %")
            return self._move(experiment, after, "shadow_done", why)
        if self._lift_due(experiment.id):
            self._snapshot(experiment.id, analysis(self._redis, experiment), experiment.share)
        decision = decide_ramp(rollout_state(self._redis, experiment))
        if decision.action == "advance":
            after = experiment.with_(step_index=experiment.step_index + 1, step_started_at=now)
        elif decision.action == "roll_back":
            after = experiment.with_(status="rolled_back")
        elif decision.action == "complete":
            after = experiment.with_(status="complete")
        else:
            kind = decision.reason.split(": ", 1)[-1].split(" (")[0].split(",")[0]
            if experiment.notes.get("hold") == kind:
                return None  # the same hold as at the last look: nothing new to record
            after = experiment.with_(notes={**experiment.notes, "hold": kind})
        outcome = self._move(experiment, after, decision.action, decision.reason)
        if outcome and decision.action == "complete":
            self._promote(after)
        return outcome

    def _move(self, before: Experiment, after: Experiment, action: str, reason: str
              ) -> str | None:
        if not rollout_store.transition(self._redis, before, after, action, reason):
            return None  # changed meanwhile (stopped, or another controller): look again
        log.info("rollout %s: %s", before.id, reason)
        return reason

    def _promote(self, experiment: Experiment) -> str | None:
        """Make the completed rollout's treatment the production model (retried each look
        until it succeeds, so a controller dying here is resumed)."""
        try:
            self._registry.promote_rolled_out(experiment.treatment_model,
                                              f"rollout {experiment.id} complete")
        except RegistryError as e:
            log.warning("rollout %s complete, promotion failed (will retry): %s",
                        experiment.id, e)
            return None
        done = experiment.with_(notes={**experiment.notes, "promoted": True})
        return self._move(experiment, done, "promoted",
                          f"production is now {experiment.treatment_model}")

    def _lift_due(self, experiment: str) -> bool:
        now = self._clock()
        if now - self._lifted.get(experiment, -math.inf) < self._lift_every_s:
            return False
        self._lifted[experiment] = now
        return True

    def _snapshot(self, experiment: str, figures: dict[str, Any], share: float | None
                  ) -> None:
        """One point of the lift over time (the dashboard's plot)."""
        lift = figures["lift_now"]
        if lift is None:
            return
        point = {"at": self._clock(), "share": share, "value": lift["value"],
                 "low": lift["low"], "high": lift["high"]}
        key = lift_key(experiment)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, orjson.dumps(point))
            pipe.ltrim(key, -LIFT_POINTS, -1)
            pipe.execute()


def lift_history(redis: Redis, experiment: str) -> list[dict[str, Any]]:
    """The lift's points over time, oldest first, `at` in ISO 8601 (UTC)."""
    points = [cast(dict[str, Any], orjson.loads(raw))
              for raw in redis.lrange(lift_key(experiment), 0, -1)]
    for point in points:
        point["at"] = dt.datetime.fromtimestamp(point["at"], dt.UTC).isoformat(
            timespec="seconds")
    return points


def run(controller: RolloutController, every_s: float, stop: Callable[[], bool]) -> None:
    """Look every `every_s` seconds until `stop()`; a failed look is logged, not fatal."""
    try:
        while not stop():
            try:
                for change in controller.look():
                    log.info("%s", change)
            except Exception:  # noqa: BLE001 - logged; the controller must outlive a bad look
                log.exception("rollout look failed")
            time.sleep(every_s)
    finally:
        controller.release()
