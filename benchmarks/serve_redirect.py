"""Serving bar: GET /p/{placement} with a warm decision vs a bare Starlette redirect.

Both apps run on one uvicorn worker (uvloop + httptools, no access log; the edgepick app on
edgepick's own httptools protocol with request limits, as `edgepick serve` runs) on this machine,
loaded by wrk with the same settings in the same run; the edgepick app reads a real
redis-server on loopback. Then the edgepick app is paced at half its measured throughput
to read its latency percentiles.

    python benchmarks/serve_redirect.py [--duration 10] [--rounds 2] [--experiment]

With `--experiment` the stored decisions are format-2 records of an experiment's arm, so
every answer also queues an exposure (batched into the lookups' round trips).

Needs wrk and redis-server (Debian: apt-get install wrk redis-server).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import Processes, free_port  # noqa: E402
from content_variants.origin import ContentOrigin
from content_variants.prewarm import Prewarmer  # noqa: E402
from content_variants.publish import publish  # noqa: E402
from edge_functions.decision_record import DecisionRecord, encode  # noqa: E402
from edge_functions.keys import decision_key, user_tag  # noqa: E402
from object_store.folder import FolderStore  # noqa: E402

SECRET = "benchmark-secret-0123456789"
WRK_SCRIPT = """
local i = 0
local users = {users}
request = function()
  i = i + 1
  return wrk.format("GET", "/p/hero?uid=user-" .. (i % users))
end
{delay}
"""


def wrk(url: str, duration: int, connections: int, users: int,
        delay_ms: int | None = None) -> dict[str, float]:
    delay = f"delay = function() return {delay_ms} end" if delay_ms else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT.format(users=users, delay=delay))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-s", f.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "75", "90", "99"):
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        result[f"p{pct}_ms"] = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--experiment", action="store_true",
                        help="store format-2 records of an experiment (exposures are logged)")
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install {tool})")

    with Processes() as servers:
        work = servers.work
        edge_port = free_port()
        redis_url = servers.redis()
        redis = Redis.from_url(redis_url)
        env = {"EDGEPICK_REDIS_URL": redis_url, "EDGEPICK_KEY_SECRET": SECRET,
               "EDGEPICK_ORIGIN": f"file://{work / 'origin'}", "EDGEPICK_SERVE_ORIGIN": "1",
               "EDGEPICK_CDN_BASE": f"http://127.0.0.1:{edge_port}",
               "EDGEPICK_DATA_DIR": str(work / "data")}
        # /metrics: /healthz is 503 until the manifest published below is loaded.
        edge = servers.uvicorn("edge_functions.app:create_app_from_env", env, factory=True,
                               port=edge_port, ready_path="/metrics")
        # The baseline stays on stock httptools: the ratio includes edgepick's request limits.
        bare = servers.uvicorn("benchmarks.bare_redirect:app", env, ready_path="/p/hero",
                               http="httptools")

        prewarmer = Prewarmer(edge, 5)
        report = publish(ROOT / "edgepick/examples/content", redis,
                         ContentOrigin(FolderStore(work / "origin")),
                         prewarmer, 65536)
        prewarmer.close()
        assert report.ok, report.failed
        record = encode(DecisionRecord(("trail-running", "winter-camping"), "bench", "treatment",
                                       int(time.time()),
                                       "bench-rollout" if args.experiment else ""))
        with redis.pipeline(transaction=False) as pipe:
            for i in range(args.users):
                pipe.set(decision_key(user_tag(SECRET.encode(), f"user-{i}"), "hero"), record,
                         ex=3600)
            pipe.execute()
        deadline = time.monotonic() + 10
        while httpx.get(f"{edge}/healthz").json()["manifest_rev"] != report.rev:
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not load the manifest")
            time.sleep(0.1)
        probe = httpx.get(f"{edge}/p/hero?uid=user-1")
        assert probe.headers["x-edgepick-source"] == "decision", probe.headers

        def load(base: str, duration: int, delay_ms: int | None = None) -> dict[str, float]:
            return wrk(f"{base}/p/hero", duration, args.connections, args.users, delay_ms)

        load(bare, 2), load(edge, 2)  # warm-up: caches, connection pools, JIT-free but lazy
        rounds = []
        for _ in range(args.rounds):
            b = load(bare, args.duration)
            e = load(edge, args.duration)
            rounds.append({"bare": b, "edge": e, "ratio": e["rps"] / b["rps"]})
            print(f"bare {b['rps']:9.0f} req/s   edge {e['rps']:9.0f} req/s   "
                  f"ratio {e['rps'] / b['rps']:.1%}   edge p99 {e['p99_ms']:.2f} ms (saturated)")
        edge_rps = statistics.median(r["edge"]["rps"] for r in rounds)
        # Pace each connection (wrk's delay(), whole milliseconds) to about half the
        # throughput: try short runs and keep the delay whose rate lands nearest to half.
        trials = {d: load(edge, 3, d)["rps"] for d in range(1, 8)}
        delay_ms = min(trials, key=lambda d: abs(trials[d] - edge_rps / 2))
        paced = load(edge, args.duration, delay_ms)
        print(f"edge paced at {paced['rps']:.0f} req/s ({paced['rps'] / edge_rps:.0%} of its "
              f"throughput): p50 {paced['p50_ms']:.2f} ms  p90 {paced['p90_ms']:.2f} ms  "
              f"p99 {paced['p99_ms']:.2f} ms")
        stats = redis.info("commandstats")
        counts = stats.get("cmdstat_mget", {})
        summary = {"date": dt.date.today().isoformat(), "experiment": args.experiment,
                   "rounds": rounds,
                   "median_ratio": statistics.median(r["ratio"] for r in rounds),
                   "paced": paced, "delay_ms": delay_ms,
                   "mget_calls": counts.get("calls"),
                   "xadd_calls": stats.get("cmdstat_xadd", {}).get("calls", 0),
                   "exposures_stream_length": redis.xlen("{ep:exp}:exposures")}
        print(f"MGET calls {summary['mget_calls']}, XADD calls {summary['xadd_calls']}, "
              f"exposures stream length {summary['exposures_stream_length']}")
        print(f"median ratio {summary['median_ratio']:.1%}; bar: ≥ 75 % and p99 < 5 ms at half")
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
        return 0


if __name__ == "__main__":
    sys.exit(main())
