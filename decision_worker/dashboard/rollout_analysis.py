"""The dashboard's analysis of each experiment: the same documents `edgepick rollout status`
prints (learning/experiments/status.py), read on a thread with a synchronous client."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from decision_worker.dashboard.experiments_panel import Analyse
from decision_worker.learning.experiments.status import rollout_documents
from decision_worker.ranking.experiment import Experiment
from edge_functions.redis_client import connect_sync


def rollout_analysis(redis_url: str) -> Analyse:
    sync = connect_sync(redis_url)

    async def analyse(redis: AsyncRedis, experiment: Experiment) -> dict[str, Any] | None:
        documents = await asyncio.to_thread(rollout_documents, sync, experiment.id)
        return documents[0]["analysis"] if documents else None

    return analyse
