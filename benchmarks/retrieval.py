"""Retrieval bar: 500 of 100,000 variants in under 2 ms, per user, one thread.

A placement of 100,000 variants (200 categories, tags), popularity counts for all of them,
users with history in a few categories. Timed per user: the user's embedding, one
(100,000 × 32) float32 matrix-vector product plus popularity, `argpartition` for the top
500 of the eligible, and the default kept. The eligibility mask of a batch is computed once
per batch in the worker and timed separately, per user.

    python benchmarks/retrieval.py [--users 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decision_worker.ranking.candidates import Catalog  # noqa: E402
from decision_worker.ranking.counters import add_to_counter, new_counts
from decision_worker.ranking.embeddings import user_vector  # noqa: E402
from decision_worker.ranking.popularity import Popularity, stat_field  # noqa: E402
from decision_worker.ranking.profile import Profile  # noqa: E402
from decision_worker.ranking.retrieval import retrieve, variant_index  # noqa: E402

VARIANTS, CATEGORIES, LIMIT = 100_000, 200, 500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    doc = {"format": 1, "rev": 1, "placements": {"feed": {"default": "v-000000", "variants": {
        f"v-{i:06d}": {"url": f"https://cdn.example/feed/v-{i:06d}.json",
                       "category": f"cat-{i % CATEGORIES}", "tags": [f"t{i % 13}"],
                       "locale": "es-ES" if i % 50 == 0 else None}
        for i in range(VARIANTS)}}}}
    catalog = Catalog.from_document(doc)
    feed = catalog.placements["feed"]
    started = time.perf_counter()
    index = variant_index(catalog, "feed")
    build_s = time.perf_counter() - started
    views = rng.integers(0, 5000, VARIANTS)
    counts = {stat_field("view", k): float(v) for k, v in zip(feed.keys, views, strict=True)}
    counts.update({stat_field("click", k): float(v // 20) for k, v in
                   zip(feed.keys, views, strict=True)})
    popularity = Popularity(counts).for_placement(feed)
    now = dt.datetime.now(dt.UTC).timestamp()
    profiles = []
    for _ in range(args.users):
        profile = Profile()
        for category in rng.choice(CATEGORIES, 3, replace=False):
            counter = new_counts()
            for _ in range(int(rng.integers(1, 6))):
                add_to_counter(counter, now - float(rng.uniform(0, 86_400 * 7)), 1)
            profile.categories[f"cat-{category}"] = counter
        profiles.append(profile)
    batch = min(200, args.users)
    started = time.perf_counter()
    nothing = [([], np.zeros(0, np.uint64)) for _ in range(batch)]
    eligible = feed.eligible(np.full(batch, now), ["en"] * batch, nothing)
    eligibility_us = (time.perf_counter() - started) / batch * 1e6
    times = []
    for n, profile in enumerate(profiles):
        started = time.perf_counter()
        picked = retrieve(index, user_vector(profile, now), popularity, eligible[n % batch],
                          feed, LIMIT)
        times.append(time.perf_counter() - started)
        assert len(picked) == LIMIT
    times.sort()
    p50, p99 = statistics.median(times) * 1e3, times[int(len(times) * 0.99)] * 1e3
    print(f"retrieve {LIMIT} of {VARIANTS:,} variants ({args.users:,} users, one thread): "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms; eligibility mask {eligibility_us:.0f} µs/user "
          f"(batches of {batch}); index built once in {build_s:.1f}s; bar < 2 ms")


if __name__ == "__main__":
    main()
