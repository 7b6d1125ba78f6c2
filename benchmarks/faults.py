"""Fault bar: Redis stopped, frozen and restarted empty under load, with `edgepick serve`,
`edgepick api` and `edgepick worker` running as their own processes.

Load: GET /p/{placement} at `--serve-rate` (default 200/s) for users who have decisions and
users who do not, and POST /v1/events at `--event-rate` (50/s), each one `Session Started`
for a new user, retried after `Retry-After` on a 503 as a Segment-compatible sender would.
Faults, each `--fault` seconds (20) with `--recover` seconds (10) between them:
  1. stop   — redis-server terminated, then started again on its append-only file;
  2. freeze — SIGSTOP, then SIGCONT (a hung primary);
  3. empty  — killed, its data deleted, started again empty (failover to a fresh replica).
Bars: 0 serving 5xx, 0 serving 404 for a published placement, 0 accepted events lost (every
messageId answered 200 is in the event log, and every accepted session start is decided in
the store), 0 restarts of the worker (or of any process).

    python benchmarks/faults.py [--fault 20] [--recover 10] [--serve-rate 200] [--event-rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import Processes, free_port, wait_http  # noqa: E402
from edge_functions.keys import decision_key, user_tag  # noqa: E402

SECRET = "fault-benchmark-secret-0123"
CONTENT = ROOT / "edgepick" / "examples" / "content"
PLACEMENTS = ("hero", "cta", "email-header")
RETRIES = 12  # a sender's attempts per message (with backoff: several minutes in all)


class RedisServer:
    """A redis-server of our own (append-only file, fsync every second) to break."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "redis"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if Redis.from_url(self.url).ping():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self, kill: bool = False) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.proc.wait(10)
        self.proc = None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def wipe(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def close(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)  # in case it was left frozen
            self.stop(kill=True)


@dataclass(frozen=True)
class Plan:
    fault: float = 20.0  # seconds each fault lasts
    recover: float = 10.0  # seconds of normal operation before, between and after
    serve_rate: float = 200.0
    event_rate: float = 50.0


@dataclass
class Tally:
    serving: Counter[str] = field(default_factory=Counter)  # status or error → count
    sources: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)  # messageIds answered 200
    sent_users: list[str] = field(default_factory=list)
    serving_ms: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


async def serve_load(base: str, rate: float, stop: asyncio.Event, tally: Tally,
                     connections: int = 8) -> None:
    """GETs over a few keep-alive connections with a minimal HTTP/1.1 client: httpx's pool
    bookkeeping grows with the queue and makes the client the bottleneck under faults."""
    host, port = base.rsplit("//", 1)[1].split(":")
    rng = random.Random(3)

    async def connection(k: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        begun = time.perf_counter()
        i = k
        while not stop.is_set():
            delay = begun + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            uid = rng.choice(tally.sent_users) if tally.sent_users and i % 4 else f"s-{i}"
            started = time.perf_counter()
            writer.write(f"GET /p/{PLACEMENTS[i % 3]}?uid={uid} HTTP/1.1\r\nHost: bench\r\n"
                         "\r\n".encode())
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as e:
                tally.serving[f"error {type(e).__name__}"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
                i += connections
                continue
            tally.serving_ms.append((time.perf_counter() - started) * 1000)
            tally.serving[head[9:12].decode()] += 1
            source = head.lower().split(b"x-edgepick-source: ")
            tally.sources[source[1].split(b"\r\n")[0].decode() if len(source) > 1 else "-"] += 1
            i += connections
        writer.close()

    await asyncio.gather(*(connection(k) for k in range(connections)))


async def event_load(base: str, rate: float, stop: asyncio.Event, tally: Tally,
                     give_up_at: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 limits=httpx.Limits(max_connections=400)) as client:
        async def one(i: int) -> None:
            user, message_id = f"visitor-{i:06d}", f"fault-{i:06d}"
            tally.sent_users.append(user)
            body = {"type": "track", "event": "Session Started", "userId": user,
                    "messageId": message_id, "timestamp": dt.datetime.now(dt.UTC).isoformat(),
                    "context": {"userAgent": "Mozilla/5.0 (iPhone) Mobile"}}
            for attempt in range(RETRIES):
                try:
                    answer = await client.post("/v1/events", json=body)
                except httpx.HTTPError as e:
                    tally.events[f"error {type(e).__name__}"] += 1
                    await asyncio.sleep(_backoff(1.0, attempt))
                    continue
                tally.events[str(answer.status_code)] += 1
                if answer.status_code == 200:
                    tally.accepted.add(message_id)
                    return
                if answer.status_code != 503 or time.monotonic() > give_up_at[0]:
                    return
                await asyncio.sleep(_backoff(float(answer.headers.get("retry-after", "1")),
                                             attempt))
            tally.events["gave up"] += 1

        await _paced(rate, stop, one)


def _backoff(retry_after: float, attempt: int) -> float:
    """Retry-After, doubled each attempt up to 30 s, with jitter (as Segment's libraries)."""
    return min(30.0, retry_after * 2 ** attempt) * random.uniform(0.8, 1.2)


async def _paced(rate: float, stop: asyncio.Event, start_one: Any) -> None:
    tasks: set[asyncio.Task[None]] = set()
    begun = time.perf_counter()
    i = 0
    while not stop.is_set():
        delay = begun + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(start_one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    await asyncio.gather(*tasks)


def timeline(redis: RedisServer, args: Plan, note: Any) -> None:
    """The faults, on wall-clock time (a thread: the load generator's event loop may be
    busy, and must not stretch a fault)."""
    time.sleep(args.recover)
    note("fault 1: redis-server stopped")
    redis.stop()
    time.sleep(args.fault)
    redis.start()
    note("redis-server started again (append-only file kept)")
    time.sleep(args.recover)
    note("fault 2: redis-server frozen (SIGSTOP)")
    redis.signal(signal.SIGSTOP)
    time.sleep(args.fault)
    redis.signal(signal.SIGCONT)
    note("redis-server resumed (SIGCONT)")
    time.sleep(args.recover)
    note("fault 3: redis-server killed and its data deleted")
    redis.stop(kill=True)
    redis.wipe()
    time.sleep(args.fault)
    redis.start()
    note("redis-server started again, empty")
    time.sleep(args.recover)


async def scenario(redis: RedisServer, serve: str, api: str, args: Plan,
                   tally: Tally) -> None:
    stop = asyncio.Event()
    give_up_at = [float("inf")]
    loads = [asyncio.create_task(serve_load(serve, args.serve_rate, stop, tally)),
             asyncio.create_task(event_load(api, args.event_rate, stop, tally, give_up_at))]

    def note(text: str) -> None:
        tally.log.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(tally.log[-1], flush=True)

    await asyncio.to_thread(timeline, redis, args, note)
    give_up_at[0] = time.monotonic() + 60
    stop.set()
    await asyncio.gather(*loads)
    note("load stopped")


def edge_percentiles(serve: str) -> dict[str, float]:
    """p50/p99/p99.9 of the edge's own handler time for /p/{placement}, from its histogram
    (upper bound of the bucket the quantile falls in)."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(httpx.get(f"{serve}/metrics").text):
        for s in family.samples:
            if s.name == "edgepick_edge_request_seconds_bucket" and \
                    s.labels.get("route") == "placement":
                buckets.append((float(s.labels["le"]), s.value))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    out = {}
    for name, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)):
        out[name] = next((le * 1000 for le, count in buckets if count >= q * total),
                         float("nan"))
    return out


def logged_ids(origin: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for path in (origin / "events").glob("*=*/*.jsonl"):  # event_day= (and dt= of old)
        for line in path.read_bytes().splitlines():
            ids[json.loads(line)["messageId"]] += 1
    return ids


def run(args: Plan) -> dict[str, Any]:
    tally = Tally()
    with Processes() as procs:
        redis = RedisServer(procs.work)
        redis.start()
        try:
            return _run(args, procs, redis, tally)
        finally:
            redis.close()


def _run(args: Plan, procs: Processes, redis: RedisServer, tally: Tally) -> dict[str, Any]:
    serve_port, api_port = free_port(), free_port()
    serve = f"http://127.0.0.1:{serve_port}"
    origin = procs.work / "origin"
    env = {"EDGEPICK_REDIS_URL": redis.url, "EDGEPICK_KEY_SECRET": SECRET,
           "EDGEPICK_ORIGIN": f"file://{origin}", "EDGEPICK_CDN_BASE": serve,
           "EDGEPICK_DATA_DIR": str(procs.work / "data"), "EDGEPICK_SERVE_ORIGIN": "true",
           "EDGEPICK_CLAIM_IDLE_S": "5"}
    procs.edgepick(["serve", "--port", str(serve_port)], env)
    wait_http(f"{serve}/metrics")
    published = subprocess.run([sys.executable, "-m", "edgepick", "publish", str(CONTENT)],
                               env={**os.environ, **env}, capture_output=True, text=True,
                               cwd=ROOT, timeout=120)
    assert published.returncode == 0, published.stderr
    wait_http(f"{serve}/healthz")
    procs.edgepick(["api", "--port", str(api_port)], env)
    api = f"http://127.0.0.1:{api_port}"
    wait_http(f"{api}/healthz")
    worker = procs.edgepick(["worker"], env)
    asyncio.run(scenario(redis, serve, api, args, tally))

    # Every accepted session start must end up decided, by the same worker process.
    store = Redis.from_url(redis.url)
    secret = SECRET.encode()
    accepted_users = sorted(f"visitor-{m[len('fault-'):]}" for m in tally.accepted)
    deadline = time.monotonic() + 120
    undecided = accepted_users
    while time.monotonic() < deadline:
        keys = [decision_key(user_tag(secret, u), "hero") for u in undecided]
        values = store.mget(keys) if keys else []
        undecided = [u for u, v in zip(undecided, values, strict=True) if v is None]
        if not undecided:
            break
        time.sleep(1)
    logged = logged_ids(origin)
    edge_ms = edge_percentiles(serve)
    return {
        "edge_handler_ms": edge_ms,
        "serving": dict(tally.serving), "sources": dict(tally.sources),
        "client_p99_ms": sorted(tally.serving_ms)[int(len(tally.serving_ms) * 0.99)]
        if tally.serving_ms else None,
        "events": dict(tally.events), "accepted": len(tally.accepted),
        "not_logged": len([m for m in tally.accepted if m not in logged]),
        "logged_twice": sum(1 for m in tally.accepted if logged[m] > 1),
        "undecided": len(undecided),
        "restarts": len([c for c in procs.exited() if "edgepick" in c]),
        "worker_alive": worker.poll() is None, "timeline": tally.log,
    }

def bars(result: dict[str, Any]) -> dict[str, int]:
    """What must be 0."""
    return {"serving 5xx": sum(v for k, v in result["serving"].items() if k.startswith("5")),
            "serving 404": result["serving"].get("404", 0),
            "serving connection errors": sum(v for k, v in result["serving"].items()
                                             if k.startswith("error")),
            "accepted events not logged": result["not_logged"],
            "accepted session starts not decided": result["undecided"],
            "processes restarted": result["restarts"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fault", type=float, default=20)
    parser.add_argument("--recover", type=float, default=10)
    parser.add_argument("--serve-rate", type=float, default=200)
    parser.add_argument("--event-rate", type=float, default=50)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run(Plan(args.fault, args.recover, args.serve_rate, args.event_rate))
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=1))
    for name, value in bars(result).items():
        print(f"{name}: {value}" + ("" if value == 0 else "   <-- BAR MISSED"))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
