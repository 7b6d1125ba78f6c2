"""What logging exposures costs the edge, in CPU per request, without HTTP or load-generator noise.

The serving app's hot path (its plain-ASGI `/p/{placement}` endpoint) is called in-process,
50 requests at a time on one event loop, against a real redis-server: alternately for users
whose stored decision is format 1 (no experiment: nothing logged) and format 2 (an
experiment's arm: each answer queues an exposure, which rides with a later lookup). The
process's CPU time per request is what bounds a uvicorn worker's throughput, so the
difference between the two is the exposure path's share of the serving benchmark's ratio.

    python benchmarks/exposure_cost.py [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import Processes  # noqa: E402
from edge_functions.app import create_app  # noqa: E402
from edge_functions.decision_record import DecisionRecord, encode  # noqa: E402
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY, decision_key, user_tag  # noqa: E402
from edge_functions.settings import ServingSettings  # noqa: E402

SECRET = "benchmark-secret-0123456789"
CONCURRENCY = 50
URL = "https://cdn.test/content/hero/variant-{}.0123abcd.json"


def manifest() -> bytes:
    variants = {v: {"url": URL.format(v), "digest": "0123abcd", "title": v, "tags": []}
                for v in ("evergreen", "trail-running", "winter-camping")}
    return json.dumps({"format": 1, "rev": 1, "placements": {
        "hero": {"default": "evergreen", "variants": variants}}}).encode()


async def serve(app: Any, users: list[str]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def one(user: str) -> None:
        scope = {"type": "http", "method": "GET", "path": "/p/hero", "headers": [],
                 "query_string": f"uid={user}".encode()}
        await app(scope, receive, send)

    for start in range(0, len(users), CONCURRENCY):
        await asyncio.gather(*(one(u) for u in users[start:start + CONCURRENCY]))


async def measure(redis_url: str, requests: int, rounds: int, work: Path) -> dict[str, Any]:
    settings = ServingSettings(redis_url=redis_url, key_secret=SECRET, data_dir=work)
    app = create_app(settings)
    edge = app.state.edge
    await edge.manifest.start()
    users = {"format 1": [f"v1-{i % 10_000}" for i in range(requests)],
             "format 2": [f"v2-{i % 10_000}" for i in range(requests)]}
    await serve(app, users["format 1"][:2000] + users["format 2"][:2000])  # warm-up
    cpu: dict[str, list[float]] = {kind: [] for kind in users}
    for _ in range(rounds):
        for kind, batch in users.items():
            started = time.process_time()
            await serve(app, batch)
            cpu[kind].append((time.process_time() - started) / requests * 1e6)
    queue = edge.exposures
    await edge.reader.close()
    await edge.manifest.stop()
    return {"cpu_us": cpu, "queued": queue.queued, "sent": queue.sent,
            "dropped": dict(queue.dropped)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with Processes() as servers:
        url = servers.redis()
        redis = Redis.from_url(url)
        redis.set(MANIFEST_KEY, manifest())
        redis.set(MANIFEST_REV_KEY, 1)
        now = int(time.time())
        with redis.pipeline(transaction=False) as pipe:
            for i in range(10_000):
                for prefix, experiment in (("v1", ""), ("v2", "bench-rollout")):
                    record = DecisionRecord(("trail-running",), "bench", "treatment", now,
                                            experiment)
                    pipe.set(decision_key(user_tag(SECRET.encode(), f"{prefix}-{i}"), "hero"),
                             encode(record), ex=3600)
            pipe.execute()
        result = asyncio.run(measure(url, args.requests, args.rounds, servers.work))
        stats = redis.info("commandstats")
    one, two = (statistics.median(result["cpu_us"][k]) for k in ("format 1", "format 2"))
    for kind, values in result["cpu_us"].items():
        print(f"{kind}: CPU µs/request by round " + " ".join(f"{v:.1f}" for v in values))
    print(f"median: format 1 {one:.1f} µs, format 2 {two:.1f} µs: exposures cost "
          f"{two - one:+.1f} µs a request ({(two - one) / one:+.1%})")
    print(f"exposures queued {result['queued']}, sent {result['sent']}, dropped "
          f"{result['dropped']}; MGET {stats['cmdstat_mget']['calls']}, XADD "
          f"{stats.get('cmdstat_xadd', {}).get('calls', 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
