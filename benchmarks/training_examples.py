"""Training's examples on a fixed log: the time of each step before training (read, parse,
features) and one SHA-256 over everything the examples hold, to check that a change to the
replay leaves them bit-identical (docs/benchmarks.md, "Training, sixth round").

The log is `benchmarks/training.py`'s population, with a fixed end, written once into
`--data` and reused, so two versions of the code read the same messages:

    python benchmarks/training_examples.py --data /tmp/train-1m [--impressions 1000000]
    PYTHONPATH=<another checkout> python benchmarks/training_examples.py --data /tmp/train-1m

The second runs the other checkout's code (PYTHONPATH comes first) with this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: another checkout's code may be measured

from decision_worker.ingest.event_log import EventLog  # noqa: E402
from decision_worker.learning import heap  # noqa: E402
from decision_worker.learning.examples import Examples  # noqa: E402
from decision_worker.learning.pipeline import collect, split_by_time  # noqa: E402
from decision_worker.learning.replay import parse_log  # noqa: E402
from decision_worker.learning.synthetic import Population, as_logged, log_messages  # noqa: E402
from decision_worker.ranking.candidates import Catalog  # noqa: E402
from decision_worker.settings import WorkerSettings  # noqa: E402
from object_store.folder import FolderStore  # noqa: E402

END = dt.datetime(2026, 12, 5, 5, 0, tzinfo=dt.UTC)  # of the population's history
UNTIL = END + dt.timedelta(hours=1)  # training's window: the 8 days before


def write_log(data: Path, impressions: int) -> None:
    from redis import Redis

    from benchmarks.catalog_fixture import write_catalog
    from benchmarks.processes import Processes
    from edge_functions.keys import MANIFEST_KEY
    with Processes() as procs:
        redis = Redis.from_url(procs.redis())
        write_catalog(redis, 3, 50)
        manifest = redis.get(MANIFEST_KEY)
        assert isinstance(manifest, bytes)
        catalog = Catalog.from_bytes(manifest)
        log = EventLog(FolderStore(data / "origin"))
        log_messages(log, as_logged(Population(catalog, impressions // 90, seed=4).history(
            30, END, dt.timedelta(days=7))))
        (data / "manifest.bin").write_bytes(manifest)


def digest(sets: tuple[Examples, ...]) -> str:
    h = hashlib.sha256()
    for s in sets:
        for array in (s.x, s.label, s.position, s.group_time, s.group_history):
            h.update(np.ascontiguousarray(array).tobytes())
        h.update(repr((s.group_sizes, s.group_placement, s.variant, s.category, s.group_kind,
                       s.group_user, s.skipped, s.left_out,
                       [dict(t) for t in s.group_traits])).encode())
        for kept in s.candidates:
            h.update(b"-" if kept is None else np.ascontiguousarray(kept[0]).tobytes()
                     + repr(kept[1]).encode())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--impressions", type=int, default=1_000_000)
    args = parser.parse_args()
    if not (args.data / "manifest.bin").exists():
        write_log(args.data, args.impressions)
    catalog = Catalog.from_bytes((args.data / "manifest.bin").read_bytes())
    log = EventLog(FolderStore(args.data / "origin"))
    since = UNTIL - dt.timedelta(days=8)
    started = time.perf_counter()
    with heap.long_lived():
        messages = collect(log, since, UNTIL)
        read = time.perf_counter()
        events, _ = parse_log(messages, forgotten=log.read_tombstones())
    parsed, cpu = time.perf_counter(), os.times()
    sets, _, _ = split_by_time(events, catalog, WorkerSettings().lateness_s, since, UNTIL)
    built, cpu_after = time.perf_counter(), os.times()
    print(f"{len(messages):,} messages: read {read - started:.1f}s, parse {parsed - read:.1f}s, "
          f"features {built - parsed:.1f}s (CPU: this process "
          f"{cpu_after.user + cpu_after.system - cpu.user - cpu.system:.1f}s, its workers "
          f"{cpu_after.children_user + cpu_after.children_system:.1f}s); peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GiB")
    print(f"examples: groups {[s.groups for s in sets]}, sha256 {digest(sets)}")


if __name__ == "__main__":
    main()
