"""Worker bar: session starts decided per second by one `edgepick worker` process, with
3 placements × 50 candidates, end to end from stream append to decision written.

The users already have history (profiles with 20 past engagements each) and every variant
has popularity counts, so each session start reads a real profile, scores 150 rows and
writes 3 decisions. The session starts are appended to the stream faster than the worker
consumes them; the clock runs from the first append until the group has delivered and
acknowledged the last entry.

Each placement has the banner preset's policy, exploration included (`--exploration 0`:
none); every decision also writes its why-record and a decision-log line.

    python benchmarks/worker_throughput.py [--sessions 20000] [--rounds 3] [--learned]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.catalog_fixture import session_record, write_catalog, write_profiles  # noqa: E402
from benchmarks.processes import Processes  # noqa: E402
from benchmarks.scoring import model_with_200_trees  # noqa: E402
from content_variants.placement_settings import PRESETS  # noqa: E402
from decision_worker.keys import EVENTS_STREAM, profile_key  # noqa: E402
from decision_worker.learning.registry import Registry
from decision_worker.ranking.feature_spec import FeatureSpec  # noqa: E402
from decision_worker.ranking.ranker import BaselineRanker  # noqa: E402
from edge_functions.keys import decision_key, user_tag  # noqa: E402
from object_store.folder import FolderStore  # noqa: E402

SECRET = "benchmark-secret-0123456789"


def drained(redis: Redis) -> bool:
    groups = redis.xinfo_groups(EVENTS_STREAM)
    if not groups:
        return False
    newest = redis.xinfo_stream(EVENTS_STREAM)["last-generated-id"]
    return groups[0]["pending"] == 0 and groups[0]["last-delivered-id"] == newest


def one_round(redis: Redis, users: list[str], round_no: int) -> float:
    received = dt.datetime.now(dt.UTC)
    records = [json.dumps(session_record(u, round_no, received)) for u in users]
    started = time.perf_counter()
    for i in range(0, len(records), 1000):
        with redis.pipeline(transaction=False) as pipe:
            for record in records[i:i + 1000]:
                pipe.xadd(EVENTS_STREAM, {"m": record})
            pipe.execute()
    while not drained(redis):
        time.sleep(0.005)
    return len(users) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--placements", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--learned", action="store_true",
                        help="Score with a 200-tree LightGBM model (compiled by lleaves) "
                             "instead of the baseline ranker.")
    parser.add_argument("--exploration", type=float, default=PRESETS["banner"]["exploration"],
                        help="Share of first slots drawn at random (the placements' policy).")
    args = parser.parse_args()
    policy = {**PRESETS["banner"], "kind": "banner", "slots": 3,
              "exploration": args.exploration}
    with Processes() as procs:
        url = procs.redis()
        redis = Redis.from_url(url)
        category_of = write_catalog(redis, args.placements, args.candidates, policy)
        users = [f"bench-user-{i}" for i in range(args.sessions)]
        write_profiles(redis, SECRET.encode(), users, category_of)
        env = {"EDGEPICK_REDIS_URL": url, "EDGEPICK_KEY_SECRET": SECRET,
               "EDGEPICK_ORIGIN": f"file://{procs.work / 'origin'}",
               "EDGEPICK_DATA_DIR": str(procs.work / "data")}
        model = BaselineRanker.version
        if args.learned:
            model = "bench-200"
            registry = Registry(FolderStore(procs.work / "origin"))
            registry.register(model, model_with_200_trees(),
                              {"features": list(FeatureSpec.legacy().columns)})
            registry.promote(model, force_reason="benchmark")
        procs.edgepick(["worker"], env)
        warm = 0
        while True:  # warm-up: the worker is up, has its catalog (and has compiled the model)
            warm += 1
            one_round(redis, users[:200], -warm)
            tag = user_tag(SECRET.encode(), users[0])
            if model.encode() in (redis.get(decision_key(tag, "slot-0")) or b""):
                break
            time.sleep(1)
        rates = [one_round(redis, users, r + 1) for r in range(args.rounds)]
        tag = user_tag(SECRET.encode(), users[-1])
        sample = redis.get(decision_key(tag, "slot-0"))
        profile_bytes = statistics.median(
            redis.memory_usage(profile_key(user_tag(SECRET.encode(), u))) for u in users[:500])
        decision_bytes = statistics.median(
            redis.memory_usage(decision_key(user_tag(SECRET.encode(), u), f"slot-{p}"))
            for u in users[:500] for p in range(args.placements))
        print(f"{args.sessions:,} session starts × {args.rounds} rounds, "
              f"{args.placements} placements × {args.candidates} candidates, one worker, "
              f"ranker {model}, exploration {args.exploration}")
        print("rounds: " + ", ".join(f"{r:,.0f}/s" for r in rates))
        print(f"median: {statistics.median(rates):,.0f} session starts/s "
              f"({statistics.median(rates) * args.placements:,.0f} decisions/s)")
        print(f"sample decision: {sample!r}")
        print(f"Redis memory per user (median of 500, MEMORY USAGE): profile {profile_bytes:,.0f} B"
              f", decisions {args.placements} × {decision_bytes:,.0f} B")


if __name__ == "__main__":
    main()
