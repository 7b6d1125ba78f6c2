"""No training-serving skew: the feature rows the worker scored online equal, value for
value, the rows the offline replay of the event log builds for the same moments (trait
columns included, as a model reading them asks for them); and the replay puts first the
variant the worker served, with the propensity the worker logged (exploration's draw
included)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis as AsyncRedis

from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.ingest.event_log import EventLog
from decision_worker.keys import TREND_DAYS_KEY, trend_day_key
from decision_worker.learning.feature_batch import FeatureBatches
from decision_worker.learning.replay import Replay, parse_log, session_moments
from decision_worker.learning.replayed_decisions import replayed_decision
from decision_worker.learning.session_groups import candidate_pool
from decision_worker.learning.synthetic import Population
from decision_worker.online.worker import Worker
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.features import COLUMN, FEATURES
from decision_worker.ranking.ranker import BaselineRanker
from decision_worker.ranking.trait_columns import MISSING, NUMERIC, OTHER, TraitColumn
from edge_functions.keys import MANIFEST_KEY, user_tag
from object_store.folder import FolderStore

from ..online.test_why_records import explore


class TraitReadingRanker(BaselineRanker):
    """Scores as the baseline, but asks for trait columns, as a model declaring them does:
    a plan (one of its values unknown to the "model": it reads "(other)") and a tier."""

    traits = (TraitColumn("plan", categories=(OTHER, MISSING, "pro", "free")),
              TraitColumn("tier", NUMERIC, ()))


def with_segment_clicks(sessions: list[dict[str, Any]],
                        catalog: Catalog) -> list[list[dict[str, Any]]]:
    """Each session start on its own, and after each one with a referrer, its user's click
    in a batch of its own (it decides nothing: redecide_on is "conversion")."""
    arrivals = []
    for session in sessions:
        arrivals.append([session])
        if "page" in session.get("context", {}):
            arrivals.append([segment_click(session, catalog)])
    return arrivals


def segment_click(session: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """A click a second after `session` starts, on the last variant of the first placement
    (the worker counts it by the session's device, source and language)."""
    placement = next(iter(catalog.placements))
    at = dt.datetime.fromisoformat(session["timestamp"].replace("Z", "+00:00")) + \
        dt.timedelta(seconds=1)
    return {"type": "track", "event": "Variant Clicked", "userId": session["userId"],
            "messageId": f"click-{session['messageId']}", "timestamp": at.isoformat(),
            "properties": {"placement": placement, "position": 1,
                           "variant": catalog.placements[placement].variants[-1]}}


@pytest.mark.parametrize("rank_limit", [500, 3])  # 3: every placement goes through retrieval
def test_online_and_offline_features_are_identical(ingest, redis, worker_settings,
                                                   rank_limit) -> None:
    settings = dataclasses.replace(worker_settings, redecide_on="conversion",
                                   rank_limit=rank_limit)
    explore(redis, "hero", 0.5)  # often enough that a wrong draw would show
    catalog = Catalog.from_bytes(redis.get(MANIFEST_KEY))
    population = Population(catalog, 12, seed=3)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    history = [m for m in population.history(6, now, span=dt.timedelta(hours=30),
                                             identify=True)  # one user without traits
               if m["type"] != "identify" or m["userId"] != population.users[1].user_id]
    sessions = list(population.session_starts(now + dt.timedelta(seconds=1)))
    for message in sessions[::3]:  # some sessions carry a device, a locale, a referrer
        message["context"] = {"userAgent": "Mozilla/5.0 (iPhone) Mobile", "locale": "es-ES",
                              "page": {"referrer": "https://www.google.com/search"}}
    # one user logs in from an anonymous session: history under the anonymous id first
    login = population.users[0].user_id
    for message in history:
        if message["userId"] == login:
            message["anonymousId"] = "anon-skew"
            del message["userId"]
    identify = {"type": "identify", "userId": login, "anonymousId": "anon-skew",
                "messageId": "skew-identify", "timestamp": now.isoformat(),
                "traits": {"plan": "pro"}}
    online: dict[tuple[str, str, float], np.ndarray] = {}

    async def run_online() -> None:
        client = AsyncRedis.from_url(settings.redis_url)
        worker = Worker(client, settings, consumer="skew")
        worker.batch.ranker = TraitReadingRanker()
        worker.inputs.stats_reload_s = 0.0  # offline counts are replayed as of each moment too
        worker.batch.observe = lambda tag, p, at, rows: online.__setitem__((tag, p, at),
                                                                           rows.copy())
        # Arrival in time order (as in production, roughly): the history, the login, then
        # each session start in its own batch, so every decision is one offline moment.
        await asyncio.to_thread(ingest, history)
        await worker.run(burst=True)
        await asyncio.to_thread(ingest, [identify])
        await worker.run(burst=True)
        for arrival in with_segment_clicks(sessions, catalog):
            await asyncio.to_thread(ingest, arrival)
            await worker.run(burst=True)
        await client.aclose()

    asyncio.run(run_online())

    today = dt.datetime.now(dt.UTC).date()  # the history reaches into yesterday's event day
    logged = EventLog(FolderStore(settings.origin_dir)).read_days(today - dt.timedelta(days=2),
                                                                  today)
    events, invalid = parse_log(logged)
    assert invalid == 0
    replay = Replay(catalog, settings.lateness_s, stats_reload_s=0.0,
                    traits=TraitReadingRanker.traits)
    plans: set[float] = set()
    secret = settings.key_secret_bytes
    served = {(d["tag"], d["placement"], d["decided_at"]): d for d in DecisionLog(
        FolderStore(settings.origin_dir)).read_days(today - dt.timedelta(days=2), today)}
    compared = trending = held = explored = 0
    # Training builds its rows in batches of moments (feature_batch.py): the same rows.
    batches = FeatureBatches(replay, size=5)
    batched: list[tuple[np.ndarray, list[np.ndarray]]] = []
    for moment in session_moments(replay, events):
        as_of = moment.profile.updated_at
        tag = user_tag(secret, moment.user)
        for placement in catalog.placements:
            scored = online.get((tag, placement, as_of))
            logged = served[(tag, placement, int(as_of))]
            if logged["arm"] == "treatment":  # what the worker served, and its propensity
                why = replayed_decision(replay, moment.profile, placement, as_of, tag,
                                        BaselineRanker(), settings.ranked_size,
                                        rank_limit).why
                assert (why.variant, why.propensity, why.explored) == (
                    logged["variant"], logged["propensity"], logged["explored"])
                explored += why.explored
            candidates = catalog.placements[placement]
            if len(candidates.variants) > rank_limit:  # what retrieval kept, and its rows
                if scored is None:  # the holdout: nothing retrieved, nothing scored
                    held += 1
                    continue
                pool = np.union1d(candidate_pool(replay, moment.profile, placement, as_of,
                                                 rank_limit), [candidates.default_index])
                offline, _ = replay.features(moment.profile, placement, as_of, pool)
                np.testing.assert_array_equal(scored, offline)
                compared += 1
                continue
            offline, _ = replay.features(moment.profile, placement, as_of)
            assert scored is not None
            np.testing.assert_array_equal(scored, offline)
            batched.append((scored, []))
            batches.request(moment.profile, placement, as_of,
                            np.arange(len(candidates.variants)),
                            lambda rows, _, found=batched[-1][1]: found.append(rows))
            trending += np.ptp(scored[:, COLUMN["trend_1d"]]) > 0  # the trend columns vary
            plans.add(float(scored[0, len(FEATURES)]))
            # training computes only the shown variants' rows (a subset with the default):
            shown = np.array(sorted({0, len(candidates.variants) - 1,
                                     candidates.default_index}))
            rows, _ = replay.features(moment.profile, placement, as_of, shown)
            np.testing.assert_array_equal(scored[shown], rows)
            compared += 1
    batches.flush()
    for scored, found in batched:
        np.testing.assert_array_equal(scored, found[0])
    assert compared + held == len(sessions) * len(catalog.placements)
    # the worker counted clicks by traffic source and language, and the replay agreed above
    fields = {f for day in redis.hgetall(TREND_DAYS_KEY)
              for f in redis.hkeys(trend_day_key(int(day)))}
    assert any(f.endswith(b"|s:search") for f in fields), fields
    assert any(f.endswith(b"|l:es") for f in fields), fields
    assert explored > 0  # some first slots were drawn at random, and replayed alike
    assert held <= compared / 4
    assert trending > compared / 2 or rank_limit < 500
    assert plans == {0.0, 1.0, 2.0, 3.0} or rank_limit < 500  # other, missing, pro, free
    logged_user = replay.profiles[login]
    assert logged_user.sessions == 1 and logged_user.traits == {"plan": "pro"}
    assert scored.shape[1] == len(FEATURES) + 2
    assert sum(c[4] for c in logged_user.categories.values()) > 0  # anonymous views counted
