"""Where rollouts live: the experiments hash (what workers read) and the audit log (every
transition with its reason), both under the hash tag `{ep:exp}`.

A transition writes the new experiment and its audit entry in one MULTI, so the two never
disagree: a controller that dies mid-step left either both or neither, and the next one
resumes from what is stored. Starting a rollout is checked under WATCH, so two operators
starting rollouts on one placement at the same moment cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, cast

from redis import Redis
from redis.exceptions import WatchError

from decision_worker.keys import EXPERIMENTS, ROLLOUT_AUDIT
from decision_worker.ranking.experiment import Experiment, ExperimentError, overlapping

AUDIT_MAX_LEN = 100_000


@dataclass(frozen=True)
class AuditEntry:
    at: float  # unix seconds
    experiment: str
    action: str  # start, shadow_done, advance, hold, roll_back, complete, stop, promoted
    status: str
    step_index: int
    share: float  # the treatment's share after the transition, in per cent
    reason: str

    @property
    def at_iso(self) -> str:
        return dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat(timespec="seconds")


def load_experiments(redis: Redis) -> list[Experiment]:
    """Every stored experiment, oldest first (an unreadable one is an error that names it)."""
    stored = redis.hgetall(EXPERIMENTS)
    experiments = []
    for key, raw in stored.items():
        try:
            experiments.append(Experiment.loads(raw))
        except ExperimentError as e:
            name = key.decode(errors="replace") if isinstance(key, bytes) else key
            raise ExperimentError(f"experiment {name}: {e}") from e
    return sorted(experiments, key=lambda e: (e.started_at, e.id))


def load_experiment(redis: Redis, experiment_id: str) -> Experiment:
    raw = redis.hget(EXPERIMENTS, experiment_id)
    if raw is None:
        raise ExperimentError(f"no experiment {experiment_id!r}: see `edgepick rollout status`")
    return Experiment.loads(raw)


def start(redis: Redis, experiment: Experiment, reason: str) -> Experiment:
    """Store a new rollout, refused when its id exists or a running one shares a placement."""
    with redis.pipeline() as pipe:
        while True:
            try:
                pipe.watch(EXPERIMENTS)  # type: ignore[no-untyped-call]
                if pipe.hexists(EXPERIMENTS, experiment.id):
                    raise ExperimentError(f"experiment {experiment.id!r} exists already: "
                                          "choose another --id")
                running = [Experiment.loads(raw) for raw in pipe.hvals(EXPERIMENTS)]
                clash = overlapping(experiment, running)
                if clash is not None:
                    where = ", ".join(clash.placements) or "every placement"
                    raise ExperimentError(f"experiment {clash.id} already runs on {where}: "
                                          "one running experiment per placement (stop it "
                                          "first)")
                pipe.multi()
                _write(pipe, experiment, "start", reason)
                pipe.execute()
                return experiment
            except WatchError:
                continue


def transition(redis: Redis, before: Experiment, after: Experiment, action: str,
               reason: str) -> bool:
    """Write `after` with its audit entry if the stored experiment is still `before` (a
    compare-and-set: a stale controller or a concurrent `stop` makes it a no-op, False)."""
    with redis.pipeline() as pipe:
        try:
            pipe.watch(EXPERIMENTS)  # type: ignore[no-untyped-call]
            raw = pipe.hget(EXPERIMENTS, before.id)
            if raw is None or Experiment.loads(raw) != before:
                pipe.reset()
                return False
            pipe.multi()
            _write(pipe, after, action, reason)
            pipe.execute()
            return True
        except WatchError:
            return False


def audit(redis: Redis, experiment: Experiment, action: str, reason: str) -> None:
    """An audit entry that changes nothing (a hold, a promotion's outcome)."""
    redis.xadd(ROLLOUT_AUDIT, _entry(experiment, action, reason), maxlen=AUDIT_MAX_LEN,
               approximate=True)


def history(redis: Redis, experiment_id: str | None = None, last: int = 1000
            ) -> list[AuditEntry]:
    """The latest `last` audit entries (of one experiment, or all), oldest first."""
    entries = []
    stored = cast(list[tuple[bytes, dict[bytes, bytes]]],
                  redis.xrevrange(ROLLOUT_AUDIT, count=last))
    for _, fields in reversed(stored):
        entry = decoded_entry(fields)
        if experiment_id is None or entry.experiment == experiment_id:
            entries.append(entry)
    return entries


def _write(pipe: Any, experiment: Experiment, action: str, reason: str) -> None:
    pipe.hset(EXPERIMENTS, experiment.id, experiment.dumps())
    pipe.xadd(ROLLOUT_AUDIT, _entry(experiment, action, reason), maxlen=AUDIT_MAX_LEN,
              approximate=True)


def _entry(experiment: Experiment, action: str, reason: str) -> dict[Any, Any]:
    return {"at": f"{time.time():.3f}", "experiment": experiment.id, "action": action,
            "status": experiment.status, "step": str(experiment.step_index),
            "share": f"{experiment.share:g}", "reason": reason}


def decoded_entry(fields: dict[bytes, bytes]) -> AuditEntry:
    text = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
    return AuditEntry(float(text["at"]), text["experiment"], text["action"], text["status"],
                      int(text["step"]), float(text["share"]), text["reason"])
