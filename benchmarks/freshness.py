"""Freshness bar: event accepted by the API → decision readable in the store the edge reads,
p99 under 50 ms at 500 events/s.

`edgepick api` and `edgepick worker` run as their own processes on a Debian redis-server.
The client sends one `Session Started` message for a new user every 2 ms (500/s), each in
its own POST over 8 keep-alive connections, and a poller MGETs every outstanding user's
decision key each millisecond. Latency is measured from the API's 200 (accepted) to the
first poll that sees the decision, and, more conservatively, from the moment the request
was scheduled to be sent.

    python benchmarks/freshness.py [--rate 500] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.catalog_fixture import write_catalog  # noqa: E402
from benchmarks.processes import Processes, free_port, wait_http  # noqa: E402
from edge_functions.keys import decision_key, user_tag  # noqa: E402

SECRET = "benchmark-secret-0123456789"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(port: int, redis_url: str, rate: float, duration: float,
              connections: int = 8) -> tuple[list[float], list[float]]:
    """Paced load on a few keep-alive connections with a minimal HTTP/1.1 client (httpx
    costs ~1 ms of CPU a request, enough to make the client the bottleneck here)."""
    redis = AsyncRedis.from_url(redis_url)
    outstanding: dict[str, tuple[float, float]] = {}  # key → (scheduled, accepted)
    from_accept: list[float] = []
    from_send: list[float] = []
    total = int(rate * duration)
    start = time.perf_counter() + 0.1
    sending = True

    async def poll() -> None:
        while sending or outstanding:
            keys = list(outstanding)
            if keys:
                values = await redis.mget(keys)
                now = time.perf_counter()
                for key, value in zip(keys, values, strict=True):
                    if value is not None:
                        scheduled, accepted = outstanding.pop(key)
                        from_accept.append(now - accepted)
                        from_send.append(now - scheduled)
            await asyncio.sleep(0.001)

    async def connection(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(k, total, connections):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            user = f"fresh-{i}"
            key = decision_key(user_tag(SECRET.encode(), user), "slot-0")
            body = json.dumps({
                "type": "track", "event": "Session Started", "userId": user,
                "messageId": f"fresh-{i}", "timestamp": dt.datetime.now(dt.UTC).isoformat(),
                "context": {"userAgent": "Mozilla/5.0 (iPhone) Mobile"}}).encode()
            writer.write(b"POST /v1/events HTTP/1.1\r\nHost: bench\r\n"
                         b"Content-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            accepted = time.perf_counter()
            assert head.startswith(b"HTTP/1.1 200"), head
            outstanding[key] = (scheduled, accepted)
        writer.close()

    poller = asyncio.create_task(poll())
    await asyncio.gather(*(connection(k) for k in range(connections)))
    sending = False
    await asyncio.wait_for(poller, 30)
    await redis.aclose()
    return from_accept, from_send


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=20)
    args = parser.parse_args()
    with Processes() as procs:
        url = procs.redis()
        write_catalog(Redis.from_url(url), 3, 50)
        env = {"EDGEPICK_REDIS_URL": url, "EDGEPICK_KEY_SECRET": SECRET,
               "EDGEPICK_ORIGIN": f"file://{procs.work / 'origin'}",
               "EDGEPICK_DATA_DIR": str(procs.work / "data")}
        port = free_port()
        procs.edgepick(["api", "--port", str(port)], env)
        api = f"http://127.0.0.1:{port}"
        wait_http(f"{api}/healthz")
        procs.edgepick(["worker"], env)
        asyncio.run(run(port, url, 50, 1))  # warm-up
        from_accept, from_send = asyncio.run(run(port, url, args.rate, args.duration))
        print(f"{len(from_accept):,} session starts at {args.rate:.0f}/s for {args.duration:.0f}s"
              " (one API process, one worker process)")
        for name, values in (("accepted → decision readable", from_accept),
                             ("request sent → decision readable", from_send)):
            print(f"{name}: p50 {percentile(values, 0.5) * 1000:.1f} ms, "
                  f"p99 {percentile(values, 0.99) * 1000:.1f} ms, "
                  f"p99.9 {percentile(values, 0.999) * 1000:.1f} ms, "
                  f"max {max(values) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
