"""What a worker decides with, kept current between batches: the candidate catalog (from
the manifest, reloaded when its revision moves), popularity counts (reloaded every few
seconds), the production model (followed through the registry's pointer), and the active
experiments with their treatment models (experiment_inputs.py).

The manifest vanishing from Redis (data lost) does not empty the catalog: the worker keeps
the last one it had. A model that does not load, or was trained on another feature spec,
is refused (logged, counted) and the worker keeps the model it has; it is not retried until
the pointer moves again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.asyncio import Redis

from decision_worker.keys import STATS_KEY, TREND_DAYS_KEY, trend_day_key
from decision_worker.online.batch import BatchProcessor
from decision_worker.online.experiment_inputs import ExperimentInputs
from decision_worker.online.metrics import WorkerMetrics
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from decision_worker.ranking.model_registry import ModelRegistry
from decision_worker.ranking.popularity import STATS_RELOAD_S, Popularity
from decision_worker.ranking.ranker import BaselineRanker
from decision_worker.ranking.trending import HORIZON_DAYS, TrendCounts
from edge_functions.errors import CorruptRecord, EdgepickError
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY

log = logging.getLogger("edgepick.worker")
MODEL_CHECK_S = 5.0  # how soon a promotion or rollback reaches the worker


class WorkerInputs:
    def __init__(self, redis: Redis, batch: BatchProcessor, metrics: WorkerMetrics,
                 registry: ModelRegistry | None, compiled_dir: Any,
                 experiment_registry: ModelRegistry | None = None) -> None:
        self._redis = redis
        self._batch = batch
        self._metrics = metrics
        self.registry = registry  # None: keep the ranker given (tests)
        self._compiled_dir = compiled_dir
        self.manifest_rev = -1
        self.manifest_missing = False
        self.stats_reload_s = STATS_RELOAD_S
        self._stats_loaded_at = 0.0
        self.trends = TrendCounts()  # the worker's copy of the day hashes (trending.py)
        self._trend_days: dict[int, int] = {}  # day → increments when last read
        self.model_check_s = MODEL_CHECK_S
        self._next_model_check = 0.0
        self._model_failed: str | None = None
        self.experiments = ExperimentInputs(redis, experiment_registry or registry,
                                            compiled_dir, metrics.experiment_refusals)

    async def update_catalog_and_popularity(self) -> None:
        """The catalog when the manifest revision moved; popularity every few seconds."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(MANIFEST_REV_KEY)
            stats_due = time.monotonic() - self._stats_loaded_at >= self.stats_reload_s
            if stats_due:
                pipe.hgetall(STATS_KEY)
                pipe.hgetall(TREND_DAYS_KEY)
            replies = await pipe.execute()
        missing = replies[0] is None
        if missing != self.manifest_missing:
            self.manifest_missing = missing
            self._metrics.manifest_missing.set(1 if missing else 0)
            if missing and self._batch.catalog.placements:
                log.error("the manifest is gone from Redis: deciding with the last catalog "
                          "(rev %d) until one is published", self.manifest_rev)
        rev = int(replies[0] or 0)
        if not missing and rev != self.manifest_rev:
            self.manifest_rev = rev
            try:
                self._batch.catalog = Catalog.from_bytes(await self._redis.get(MANIFEST_KEY))
                log.info("catalog rev %d: %d placements", rev,
                         len(self._batch.catalog.placements))
            except (CorruptRecord, ValueError) as e:
                log.error("manifest rev %d unusable, keeping the previous catalog: %s", rev, e)
        if stats_due:
            await self._reload_trend_days(replies[2])
            self._batch.popularity = Popularity.from_hash(replies[1], self.trends)
            self._stats_loaded_at = time.monotonic()

    async def _reload_trend_days(self, increments: dict[bytes, bytes]) -> None:
        """Re-read the day hashes whose increment count moved since the last reload."""
        now = {int(day): int(count) for day, count in increments.items()}
        if not now:
            return
        newest = max(now)
        moved = [day for day, count in now.items()
                 if day > newest - HORIZON_DAYS and self._trend_days.get(day) != count]
        if moved:
            async with self._redis.pipeline(transaction=False) as pipe:
                for day in moved:
                    pipe.hgetall(trend_day_key(day))
                replies = await pipe.execute()
            for day, fields in zip(moved, replies, strict=True):
                self.trends.set_day(day, {k.decode(): int(v) for k, v in fields.items()})
                self._trend_days[day] = now[day]
        for day in self.trends.drop_before(newest - HORIZON_DAYS + 1):
            self._trend_days.pop(day, None)

    def reload_popularity_now(self) -> None:
        self._stats_loaded_at = 0.0

    async def update_experiments(self) -> None:
        """The active experiments and their models (every `experiments.check_s`)."""
        self._batch.experiments = await self.experiments.update()

    async def update_model(self) -> None:
        """Follow the registry's production pointer (every `model_check_s`)."""
        now = time.monotonic()
        if self.registry is None or now < self._next_model_check:
            return
        self._next_model_check = now + self.model_check_s
        try:
            pointers = await asyncio.to_thread(self.registry.pointers)
        except (EdgepickError, OSError) as e:
            log.warning("model registry unreadable (%s); keeping %s", e,
                        self._batch.ranker.version)
            return
        wanted, current = pointers.get("production"), self._batch.ranker.version
        if wanted is None:
            if not isinstance(self._batch.ranker, BaselineRanker):
                self._batch.ranker = BaselineRanker()
                log.info("production pointer cleared: scoring with %s", BaselineRanker.version)
            return
        if wanted in (current, self._model_failed):
            return
        try:
            text, card = await asyncio.to_thread(self.registry.load, wanted)
            ranker = LightGBMRanker.from_card(wanted, text, card)
            compiled = await asyncio.to_thread(ranker.compile, self._compiled_dir)
        except (EdgepickError, OSError, ValueError) as e:
            self._model_failed = wanted
            self._metrics.model_refusals.inc()
            log.error("model %s refused, still scoring with %s: %s", wanted, current, e)
            return
        self._batch.ranker = ranker
        self._model_failed = None
        log.info("now scoring with %s (%s)", wanted,
                 "compiled" if compiled else "LightGBM predict")
