"""The product end to end: an event posted to the API, the worker deciding, the edge
redirecting to the decided variant, and the variant's JSON fetched from that URL."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import httpx
from redis.asyncio import Redis as AsyncRedis

from decision_worker.api import create_api
from decision_worker.online.worker import Worker
from edge_functions.bucketing import in_holdout

TOKEN = "admin-token-0123456789"


def test_session_start_posted_to_the_api_changes_what_the_edge_serves(served_example,
                                                                       serve_app) -> None:
    settings, edge = served_example
    api = serve_app(create_api(dataclasses.replace(settings, admin_token=TOKEN)))
    user = next(f"hiker-{i}" for i in range(100) if not in_holdout(f"hiker-{i}", 0.1))
    now = dt.datetime.now(dt.UTC).isoformat()
    before = httpx.get(f"{edge}/p/hero", params={"uid": user})
    assert before.headers["x-edgepick-source"] == "no-decision"
    history = [{"type": "track", "event": event, "userId": user, "messageId": f"{event}-{i}",
                "timestamp": now, "properties": {"placement": "hero",
                                                 "variant": "winter-camping", "position": 1}}
               for i in range(3) for event in ("Variant Viewed", "Variant Clicked")]
    history.append({"type": "track", "event": "Session Started", "userId": user,
                    "messageId": "session-1", "timestamp": now,
                    "context": {"userAgent": "Mozilla/5.0 (iPhone) Mobile", "locale": "en-US"}})
    assert httpx.post(f"{api}/v1/events", json={"batch": history}).json()["accepted"] == 7

    async def drain() -> None:
        client = AsyncRedis.from_url(settings.redis_url)
        await Worker(client, settings).run(burst=True)
        await client.aclose()

    asyncio.run(drain())
    after = httpx.get(f"{edge}/p/hero", params={"uid": user})
    assert after.status_code == 302 and after.headers["x-edgepick-source"] == "decision"
    variant = httpx.get(after.headers["location"])
    assert variant.status_code == 200
    # The hero explores its first slot now and then (the banner preset); the decisions API
    # says whether this decision did, and the edge serves the decided first variant either way.
    decided = httpx.get(f"{api}/v1/decisions/{user}", params={"placement": "hero"},
                        headers={"authorization": f"Bearer {TOKEN}"}).json()["placements"]["hero"]
    assert variant.json()["variant"] == decided["ranked"][0]
    if not decided["exploration"]["explored"]:
        assert decided["ranked"][0] == "winter-camping"
