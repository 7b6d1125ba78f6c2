"""Training bar: `edgepick train` on 1,000,000 logged impressions in at most 60 s on this
2-core machine, with peak memory under 4 GiB.

The synthetic population (hidden preferences, position bias, fatigue) shows slates of 3
variants of 3 placements × 50 candidates over 7 days; its events are written to a folder
event log and the manifest to a redis-server (not timed). Then `edgepick train --days 8`
runs as its own process: collect → features (replay) → train → evaluate → register. Wall
time is measured around the process, peak memory is its maximum resident set size.

    python benchmarks/training.py [--impressions 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.catalog_fixture import write_catalog  # noqa: E402
from benchmarks.processes import Processes  # noqa: E402
from decision_worker.ingest.event_log import EventLog
from decision_worker.learning.synthetic import (  # noqa: E402
    Population,
    as_logged,
    log_messages,
)
from decision_worker.ranking.candidates import Catalog  # noqa: E402
from edge_functions.keys import MANIFEST_KEY  # noqa: E402
from object_store.folder import FolderStore  # noqa: E402

SLATE = 3
SLATES_PER_USER = 30


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impressions", type=int, default=1_000_000)
    args = parser.parse_args()
    with Processes() as procs:
        url = procs.redis()
        redis = Redis.from_url(url)
        write_catalog(redis, 3, 50)
        catalog = Catalog.from_bytes(redis.get(MANIFEST_KEY))
        users = args.impressions // (SLATE * SLATES_PER_USER)
        end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        started = time.perf_counter()
        log = EventLog(FolderStore(procs.work / "origin"))
        views = 0

        def counted(messages: Iterator[dict]) -> Iterator[dict]:
            nonlocal views
            for message in messages:
                views += message["event"] == "Variant Viewed"
                yield message

        total = log_messages(log, counted(as_logged(Population(catalog, users, seed=4).history(
            SLATES_PER_USER, end, dt.timedelta(days=7))))).imported
        print(f"generated {views:,} impressions ({total:,} messages, {users:,} users) in "
              f"{time.perf_counter() - started:.0f}s")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEPICK_REDIS_URL": url,
               "EDGEPICK_ORIGIN": f"file://{procs.work / 'origin'}",
               "EDGEPICK_DATA_DIR": str(procs.work / "data"), "COLUMNS": "120"}
        started = time.perf_counter()
        # cwd: `python -m` imports from the working directory first, so run from this
        # checkout (another one's code would be timed otherwise)
        result = subprocess.run([sys.executable, "-m", "edgepick", "train", "--days", "8"],
                                env=env, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
        print(result.stdout[-3000:], result.stderr[-2000:])
        print(f"edgepick train on {views:,} impressions: {seconds:.1f}s wall, peak RSS "
              f"{peak_gib:.2f} GiB (bars: ≤ 60 s, ≤ 4 GiB, issue 10); exit {result.returncode}")


if __name__ == "__main__":
    main()
