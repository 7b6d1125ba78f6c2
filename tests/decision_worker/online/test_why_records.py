"""What the worker keeps beside a decision: the why-record in Redis (propensity, explored,
the first variant's features) and the decision log on the origin (what training joins)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from content_variants.manifest_writer import apply
from decision_worker.errors import EventLogError
from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.keys import why_key
from decision_worker.online.worker import Worker
from decision_worker.ranking.features import FEATURES
from decision_worker.ranking.ranker import BaselineRanker
from decision_worker.ranking.why_record import WhyRecord, decode_whys
from edge_functions.keys import decision_key, user_tag
from object_store.folder import FolderStore
from tests.conftest import Settings

from ..conftest import NOW
from .test_worker import clicks_on, not_held, session


def explore(redis: Redis, placement: str, epsilon: float) -> None:
    """Give a placement of the test catalog a policy that explores."""
    def change(doc: dict[str, Any]) -> None:
        doc["placements"][placement]["policy"] = {
            "kind": "banner", "slots": 3, "exclude": ["conversion"], "max_views": 0,
            "include_default": False, "exploration": epsilon, "explore_new": 0.5}

    apply(redis, change)


def why_of(redis: Redis, settings: Settings, user: str, placement: str) -> WhyRecord | None:
    raw = redis.get(why_key(user_tag(settings.key_secret_bytes, user)))
    return None if raw is None else decode_whys(raw)[1].get(placement)


def decision_log(settings: Settings) -> list[dict[str, Any]]:
    assert settings.origin_dir is not None
    return DecisionLog(FolderStore(settings.origin_dir)).read_days(
        NOW.date() - dt.timedelta(days=1), NOW.date() + dt.timedelta(days=1))


def test_each_decision_has_a_why_record_with_its_ttl_and_a_log_line(
        ingest, drain, decision, redis: Redis, worker_settings) -> None:
    user = not_held("why")
    ingest(clicks_on(user, "trail-running", 3, "w") + [session(user, "w-s")])
    drain()
    tag = user_tag(worker_settings.key_secret_bytes, user)
    hero, why = decision(user, "hero"), why_of(redis, worker_settings, user, "hero")
    assert hero is not None and why is not None
    assert why.variant == hero.ranked[0] == "trail-running"
    assert (why.propensity, why.explored) == (1.0, False)  # no policy: no exploration
    assert len(why.features) == len(FEATURES)
    assert abs(redis.ttl(why_key(tag)) - redis.ttl(decision_key(tag, "hero"))) <= 1
    assert decode_whys(redis.get(why_key(tag)))[0] == hero.decided_at
    lines = [line for line in decision_log(worker_settings) if line["tag"] == tag]
    assert sorted(line["placement"] for line in lines) == ["cta", "hero"]
    logged = next(line for line in lines if line["placement"] == "hero")
    assert logged.pop("experiment", "") == hero.experiment  # the personalization band's
    assert logged == {"tag": tag, "placement": "hero", "variant": "trail-running",
                      "propensity": 1.0, "explored": False, "model": hero.model_version,
                      "arm": "treatment", "decided_at": hero.decided_at}
    assert worker_settings.origin_dir is not None
    for path in (worker_settings.origin_dir / "decisions").rglob("*.jsonl"):
        assert user not in path.read_text()  # the keyed hash only, never the id


def test_an_exploring_placement_logs_what_it_served_with_its_propensity(
        ingest, drain, decision, redis: Redis, worker_settings) -> None:
    explore(redis, "hero", 0.5)
    users = [not_held(f"explorer-{i}") for i in range(40)]
    ingest([session(u, f"x-{u}") for u in users])
    drain()
    logged = {line["tag"]: line for line in decision_log(worker_settings)
              if line["placement"] == "hero"}
    explored = 0
    for user in users:
        hero, why = decision(user, "hero"), why_of(redis, worker_settings, user, "hero")
        assert hero is not None and why is not None and why.variant == hero.ranked[0]
        line = logged[user_tag(worker_settings.key_secret_bytes, user)]
        assert (line["variant"], line["propensity"], line["explored"]) == (
            why.variant, why.propensity, why.explored)
        # three eligible variants (one ended, one is for Spanish speakers), all new:
        assert why.propensity in (0.5 + 0.5 / 3, 0.5 / 3)
        explored += why.explored
    assert 5 < explored < 35  # about half of 40
    # the cta placement (no policy) never explores
    assert {line["propensity"] for line in decision_log(worker_settings)
            if line["placement"] == "cta"} == {1.0}


def test_an_origin_refusing_the_decision_log_does_not_stop_deciding(
        ingest, decision, worker_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: DecisionLog, lines: Any) -> int:
        raise EventLogError("event log write failed: disk full")

    first, second = not_held("offline"), not_held("online")
    tags = [user_tag(worker_settings.key_secret_bytes, u) for u in (first, second)]

    async def run() -> None:
        client = AsyncRedis.from_url(worker_settings.redis_url)
        worker = Worker(client, worker_settings, ranker=BaselineRanker(), consumer="log")
        with monkeypatch.context() as patched:
            patched.setattr(DecisionLog, "append", refuse)
            await asyncio.to_thread(ingest, [session(first, "o-1")])
            await worker.run(burst=True)
        assert decision(first, "hero") is not None  # served regardless
        assert worker.metrics.registry.get_sample_value(
            "edgepick_worker_decision_log_failures_total") >= 1
        assert len(worker.batch.decision_log.pending) == 2  # kept for the next flush
        await asyncio.to_thread(ingest, [session(second, "o-2",
                                                 at=NOW + dt.timedelta(seconds=1))])
        await worker.run(burst=True)
        assert worker.batch.decision_log.pending == []
        await client.aclose()

    asyncio.run(run())
    assert {line["tag"] for line in decision_log(worker_settings)} == set(tags)
