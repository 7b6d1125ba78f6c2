"""Where every rollout stands, as JSON-ready documents: what `edgepick rollout status` prints
and the dashboard plots (one function for both, so they show the same figures)."""

from __future__ import annotations

import dataclasses
from typing import Any

from redis import Redis

from decision_worker.learning.experiments import rollout_store
from decision_worker.learning.experiments.arm_figures import (
    analysis,
    personalization_analysis,
)
from decision_worker.learning.experiments.controller import lift_history
from decision_worker.ranking.experiment import PERSONALIZATION


def rollout_documents(redis: Redis, experiment_id: str | None = None) -> list[dict[str, Any]]:
    """Each experiment's settings and state, its arms' figures, the lift over time, the
    sample-ratio check, the guardrails and its audit history; newest first."""
    experiments = ([rollout_store.load_experiment(redis, experiment_id)] if experiment_id
                   else rollout_store.load_experiments(redis))
    documents = []
    for experiment in reversed(experiments):
        doc = dataclasses.asdict(experiment)
        doc["share"] = experiment.share
        doc["guardrails"] = [{"metric": g.metric, "max_drop": g.max_drop}
                             for g in experiment.guardrails]
        doc["analysis"] = {
            **analysis(redis, experiment),
            "lift": lift_history(redis, experiment.id),
            "history": [{"at": e.at_iso, "action": e.action, "share": e.share,
                         "status": e.status, "reason": e.reason}
                        for e in rollout_store.history(redis, experiment.id)],
        }
        documents.append(doc)
    return documents


def personalization_document(redis: Redis) -> dict[str, Any]:
    """The lift of personalization itself (users served as usual against the persistent
    holdout): both arms' figures, the lift now and over time."""
    return {**personalization_analysis(redis), "lift": lift_history(redis, PERSONALIZATION)}
