"""The dashboard's analysis of each experiment and of personalization against the holdout:
the same documents `edgepick rollout status` prints (learning/experiments/status.py), read
on a thread with a synchronous client."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from decision_worker.dashboard.experiments_panel import Analyse, HoldoutLift
from decision_worker.learning.experiments.status import (
    personalization_document,
    rollout_documents,
)
from decision_worker.ranking.experiment import Experiment
from edge_functions.redis_client import connect_sync


def rollout_hooks(redis_url: str) -> tuple[Analyse, HoldoutLift]:
    """The experiments' analysis and the holdout's lift, on one synchronous client."""
    sync = connect_sync(redis_url)

    async def analyse(redis: AsyncRedis, experiment: Experiment) -> dict[str, Any] | None:
        documents = await asyncio.to_thread(rollout_documents, sync, experiment.id)
        return documents[0]["analysis"] if documents else None

    async def lift() -> dict[str, Any] | None:
        return await asyncio.to_thread(personalization_document, sync)

    return analyse, lift
