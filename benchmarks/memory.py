"""Redis memory per key kind, measured on the real path: `edgepick api` and `edgepick worker`
processes on Debian's redis-server, a catalog of 3 placements × 50 variants, and a population
whose history (views and clicks), identify traits and session starts are posted as Segment
batches. Then `MEMORY USAGE` is sampled for every kind of key edgepick writes, and the
budget per user, per message and per component is printed (docs/benchmarks.md, "Memory").

    python benchmarks/memory.py [--users 2000] [--history 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.catalog_fixture import write_catalog  # noqa: E402
from benchmarks.processes import Processes, free_port  # noqa: E402
from decision_worker.keys import (  # noqa: E402
    DEAD_LETTER_STREAM,
    EVENTS_STREAM,
    REDECIDE_DUE,
    SEEN_PREFIX,
    STATS_KEY,  # noqa: E402
    STREAM_RETENTION_S,
    SUPPRESSED,
)
from edge_functions.keys import MANIFEST_KEY  # noqa: E402

SECRET = "benchmark-secret-0123456789"
TOKEN = "benchmark-admin-token-0123"


def messages(users: int, history: int, placements: list[str]) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    out: list[dict[str, Any]] = []
    for u in range(users):
        user = f"member-{u:06d}"
        context = {"userAgent": "Mozilla/5.0 (iPhone) Mobile", "locale": "en-US",
                   "page": {"referrer": "https://www.google.com/"}}
        out.append({"type": "identify", "userId": user, "messageId": f"{user}-id",
                    "timestamp": (now - dt.timedelta(hours=3)).isoformat(),
                    "traits": {"plan": "pro", "country": "GB", "email": "x@example.com"}})
        for i in range(history):
            placement = placements[i % len(placements)]
            at = (now - dt.timedelta(minutes=120 - i)).isoformat()
            props = {"placement": placement, "variant": f"v-{(u + i) % 50:03d}", "position": 0}
            name = "Variant Clicked" if i % 3 == 0 else "Variant Viewed"
            out.append({"type": "track", "event": name, "userId": user,
                        "messageId": f"{user}-{i}", "timestamp": at, "properties": props,
                        "context": context})
        out.append({"type": "track", "event": "Session Started", "userId": user,
                    "messageId": f"{user}-s", "timestamp": now.isoformat(), "context": context})
    return out


def usage(redis: Redis, keys: list[bytes]) -> list[int]:
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return [int(v or 0) for v in pipe.execute()]


def sample(redis: Redis, pattern: str, limit: int = 2000) -> list[bytes]:
    keys: list[bytes] = []
    for key in redis.scan_iter(match=pattern, count=5000):
        keys.append(key)
        if len(keys) >= limit:
            break
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--history", type=int, default=20)
    args = parser.parse_args()
    with Processes() as procs:
        url = procs.redis()
        redis = Redis.from_url(url)
        category_of = write_catalog(redis, 3, 50)
        redis.delete(STATS_KEY)  # counted from the posted history instead
        placements = sorted({k.split("/")[0] for k in category_of})
        env = {"EDGEPICK_REDIS_URL": url, "EDGEPICK_KEY_SECRET": SECRET,
               "EDGEPICK_ORIGIN": f"file://{procs.work / 'origin'}",
               "EDGEPICK_DATA_DIR": str(procs.work / "data"), "EDGEPICK_ADMIN_TOKEN": TOKEN}
        port = free_port()
        procs.edgepick(["api", "--port", str(port)], env)
        procs.edgepick(["worker"], env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        before = int(redis.info("memory")["used_memory"])
        batch = messages(args.users, args.history, placements)
        with httpx.Client(timeout=60) as client:
            for start in range(0, len(batch), 500):
                answer = client.post(f"{base}/v1/events", json={"batch": batch[start:start + 500]})
                assert answer.status_code == 200, answer.text
            bad = [{"type": "track", "userId": f"u{i}", "messageId": f"bad-{i}",
                    "properties": {"blob": "x" * 2000}} for i in range(100)]
            assert client.post(f"{base}/v1/events", json={"batch": bad}).status_code == 400
            forgotten = [f"member-{u:06d}" for u in range(0, args.users, 10)]
            for start in range(0, len(forgotten), 100):
                client.post(f"{base}/v1/privacy/forget",
                            json={"userIds": forgotten[start:start + 100]},
                            headers={"authorization": f"Bearer {TOKEN}"})
        while redis.zcard(REDECIDE_DUE) < args.users * 0.85:
            time.sleep(0.2)
        time.sleep(2)
        after = int(redis.info("memory")["used_memory"])

        rows: list[tuple[str, str, str]] = []

        def per_key(name: str, pattern: str) -> float:
            keys = sample(redis, pattern)
            sizes = usage(redis, keys)
            median = statistics.median(sizes) if sizes else 0.0
            rows.append((name, f"{median:,.0f} B median of {len(sizes):,}",
                         f"max {max(sizes, default=0):,} B"))
            return float(median)

        def per_entry(name: str, key: str, count: int) -> float:
            size = int(redis.memory_usage(key, samples=0) or 0)
            each = size / count if count else 0.0
            rows.append((name, f"{each:,.0f} B per entry", f"{size:,} B for {count:,}"))
            return each

        profile = per_key("profile ep:u:{tag}", "ep:u:*")
        decision = per_key("decision ep:d:{tag}:placement", "ep:d:*")
        why = per_key("why-record ep:w:{tag} (all placements)", "ep:w:*")
        marker = per_key("dedupe marker {ep:events}:seen:id", SEEN_PREFIX + "*")
        stream_entry = per_entry("stream {ep:events}:stream", EVENTS_STREAM,
                                 redis.xlen(EVENTS_STREAM))
        dead = per_entry("dead letters {ep:events}:dead", DEAD_LETTER_STREAM,
                         redis.xlen(DEAD_LETTER_STREAM))
        stats = per_entry("popularity {ep:stats}:engagement (fields)", STATS_KEY,
                          redis.hlen(STATS_KEY))
        refresh = per_entry("refresh schedule {ep:refresh}:due", REDECIDE_DUE,
                            redis.zcard(REDECIDE_DUE))
        suppressed = per_entry("suppressed ids {ep:events}:suppressed", SUPPRESSED,
                               redis.hlen(SUPPRESSED))
        per_entry("manifest {ep:manifest}:doc (3 x 50 variants)", MANIFEST_KEY, 1)
        for name, figure, detail in rows:
            print(f"{name:48} {figure:28} {detail}")
        per_user = profile + len(placements) * decision + why + refresh
        print(f"\nused_memory grew {after - before:,} B for {args.users:,} users and "
              f"{len(batch) + 100:,} messages")
        print(f"per active user ({len(placements)} placements): {per_user:,.0f} B "
              f"(profile + decisions + why-record + refresh entry)")
        print(f"per message/s of traffic, 24 h dedupe window: {marker * 24 * 3600:,.0f} B")
        print(f"stream at its bound (1,000,000 entries): {stream_entry * 1e6 / 2**20:,.0f} MiB")
        print(f"dead letters at their bound (50,000): {dead * 5e4 / 2**20:,.0f} MiB")
        print(f"popularity per variant (15 fields): {stats * 15:,.0f} B; "
              f"suppression per forgotten id: {suppressed:,.0f} B")
        length = redis.xlen(EVENTS_STREAM)
        time.sleep(STREAM_RETENTION_S + 7)  # past the retention and a housekeeping round
        print(f"stream entries once read and past the retention: {length:,} -> "
              f"{redis.xlen(EVENTS_STREAM):,} (trimmed by the worker)")


if __name__ == "__main__":
    main()
