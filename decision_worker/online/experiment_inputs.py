"""The experiments a worker decides with: the active ones, re-read from Redis every
`check_s` (one HGETALL of a hash of a few entries), and their treatment models, loaded from
the registry and compiled as the production model is (inputs.py), cached by version.

A stored experiment that does not parse, or whose model does not load (missing, corrupt,
trained on a feature spec this worker cannot build), is logged and counted
(`edgepick_worker_experiment_refusals_total`) and absent for this worker: its users are
served production. A model that failed is tried again only when the stored experiments
change (a step, another model). The worker never writes the hash: the rollout controller does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from redis.asyncio import Redis

from decision_worker.keys import EXPERIMENTS
from decision_worker.online.experiment_arms import LiveExperiment, LiveExperiments
from decision_worker.ranking.experiment import Experiment, ExperimentError
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from decision_worker.ranking.model_registry import ModelRegistry
from decision_worker.ranking.ranker import BaselineRanker, Ranker
from edge_functions.errors import EdgepickError

log = logging.getLogger("edgepick.worker")
EXPERIMENT_CHECK_S = 2.0  # how soon a step, a rollback or a new experiment reaches workers


class ExperimentInputs:
    def __init__(self, redis: Redis, registry: ModelRegistry | None, compiled_dir: Path,
                 refusals: Counter | None = None) -> None:
        self._redis = redis
        self.registry = registry  # None: experiments' models cannot be loaded (absent)
        self._compiled_dir = compiled_dir
        self._refusals = refusals
        self.check_s = EXPERIMENT_CHECK_S
        self._next_check = 0.0
        self._raw: dict[Any, Any] = {}
        self._models: dict[str, Ranker] = {}  # version → loaded ranker
        self._failed: set[str] = set()  # versions refused (not retried)
        self._bad: set[bytes] = set()  # stored values refused (logged once)
        self.current = LiveExperiments()

    async def update(self) -> LiveExperiments:
        """The experiments to decide with now (re-read when a check is due)."""
        now = time.monotonic()
        if now < self._next_check:
            return self.current
        self._next_check = now + self.check_s
        raw: dict[Any, Any] = await self._redis.hgetall(EXPERIMENTS)
        if raw == self._raw:
            return self.current
        self._raw = raw
        self._failed.clear()  # a changed experiment retries its model once
        active = {e.id: e for e in self._parse(raw) if e.active}
        live = []
        for experiment in sorted(active.values(), key=lambda e: e.id):
            ranker = await self._model(experiment)
            if ranker is not None:
                live.append(LiveExperiment(experiment, ranker))
        self._models = {v: r for v, r in self._models.items()
                        if any(e.treatment_model == v for e in active.values())}
        if active != self.current.active or len(live) != len(self.current.live):
            log.info("experiments: %s", ", ".join(
                f"{e.id} {e.status} {e.share:g}%" for e in active.values()) or "none active")
        self.current = LiveExperiments(active, tuple(live))
        return self.current

    def _parse(self, raw: dict[Any, Any]) -> list[Experiment]:
        parsed = []
        for field_name, value in sorted(raw.items()):
            try:
                parsed.append(Experiment.loads(value))
            except ExperimentError as e:
                if value not in self._bad:
                    self._bad.add(value)
                    self._refuse(f"experiment {field_name[:60]!r} ignored: {e}")
        return parsed

    async def _model(self, experiment: Experiment) -> Ranker | None:
        version = experiment.treatment_model
        if version == BaselineRanker.version:
            return BaselineRanker()
        if version in self._models:
            return self._models[version]
        if version in self._failed:
            return None
        if self.registry is None:
            self._failed.add(version)
            self._refuse(f"experiment {experiment.id}: no model registry to load {version} "
                         "from; serving production to its users")
            return None
        try:
            text, card = await asyncio.to_thread(self.registry.load, version)
            ranker = LightGBMRanker.from_card(version, text, card)
            compiled = await asyncio.to_thread(ranker.compile, self._compiled_dir)
        except (EdgepickError, OSError, ValueError) as e:
            self._failed.add(version)
            self._refuse(f"experiment {experiment.id}: model {version} refused, serving "
                         f"production to its users: {e}")
            return None
        log.info("experiment %s: treatment %s loaded (%s)", experiment.id, version,
                 "compiled" if compiled else "LightGBM predict")
        self._models[version] = ranker
        return ranker

    def _refuse(self, message: str) -> None:
        log.error(message)
        if self._refusals is not None:
            self._refusals.inc()
