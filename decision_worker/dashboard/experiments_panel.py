"""The experiments panel: every experiment in the Redis hash `EXPERIMENTS`
(ranking/experiment.py), with its models, status, step and share, and its analysis.

The analysis is a hook (`Analyse`): given the Redis client and an experiment, it returns
the rollout analysis as JSON, or None while there is none. The page renders this shape
(every part optional):

    {"arms": {"control": {"users": n, "exposures": n, "clicks": n, "click_through": r,
                          "low": l, "high": h, "conversions": n, "conversion_rate": r,
                          "conversion_low": l, "conversion_high": h}, "treatment": {…}},
     "lift_now": {"value": x, "low": l, "high": h},             # click-through, 95 %
     "conversion_lift_now": {"value": x, "low": l, "high": h},  # conversion rate, 95 %
     "placements": {placement: {"arms": …, "lift_now": …, "conversion_lift_now": …}},
     "lift": [{"at": iso time, "value": x, "low": l, "high": h}, …],   # over time, 95 %
     "srm": {"p_value": p, "mismatch": bool},
     "history": [{"at": iso time, "action": str, "share": x, "reason": str}, …]}
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from decision_worker.keys import EXPERIMENTS
from decision_worker.ranking.experiment import Experiment, ExperimentError

Analyse = Callable[[Redis, Experiment], Awaitable[dict[str, Any] | None]]
# The lift of personalization itself against the persistent holdout, in the same shape
HoldoutLift = Callable[[], Awaitable[dict[str, Any] | None]]
STATUS_ORDER = {"ramping": 0, "shadow": 1, "rolled_back": 2, "stopped": 3, "complete": 4}


async def no_analysis(redis: Redis, experiment: Experiment) -> dict[str, Any] | None:
    """The analysis until a rollout controller provides one."""
    return None


async def no_holdout_lift() -> dict[str, Any] | None:
    return None


async def experiments_panel(redis: Redis, analyse: Analyse,
                            timeout_s: float) -> list[dict[str, Any]]:
    """Raises RedisError or TimeoutError when the experiments cannot be read within
    `timeout_s` (the route answers 503); the analyses are not bound by it, and what one
    raises propagates."""
    async with asyncio.timeout(timeout_s):
        stored: dict[Any, Any] = await redis.hgetall(EXPERIMENTS)
    items: list[dict[str, Any]] = []
    for field, raw in sorted(stored.items()):
        try:
            experiment = Experiment.loads(raw)
        except ExperimentError as e:
            items.append({"id": bytes(field).decode(errors="replace"), "error": str(e),
                          "analysis": None})
            continue
        items.append({**experiment_summary(experiment),
                      "analysis": await analyse(redis, experiment)})
    items.sort(key=lambda i: (STATUS_ORDER.get(i.get("status", ""), 9),
                              -(i.get("started_at_unix") or 0), i["id"]))
    return items


def experiment_summary(experiment: Experiment) -> dict[str, Any]:
    e = experiment
    return {
        "id": e.id, "error": None, "name": e.name or e.id,
        "treatment_model": e.treatment_model, "control_model": e.control_model,
        "status": e.status, "active": e.active, "share": e.share,
        "step_index": e.step_index, "steps": list(e.steps),
        "placements": list(e.placements), "shadow_share": e.shadow_share,
        "min_exposures": e.min_exposures,
        "guardrails": [{"metric": g.metric, "max_drop": g.max_drop} for g in e.guardrails],
        "started_at": _iso(e.started_at), "started_at_unix": e.started_at,
        "step_started_at": _iso(e.step_started_at)}


def _iso(unix: float) -> str | None:
    return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat() if unix > 0 else None
