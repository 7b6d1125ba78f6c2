"""Scoring bar: µs per candidate row in batches of 150 (3 placements × 50 candidates) with a
200-tree, 31-leaf model on the worker's feature spec, LightGBM's predict against the
lleaves-compiled model (one thread each), in the same process. Predictions are checked equal.

    python benchmarks/scoring.py [--batches 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decision_worker.ranking.compiled import probe_rows  # noqa: E402
from decision_worker.ranking.feature_spec import FeatureSpec  # noqa: E402
from decision_worker.ranking.lgbm_ranker import LightGBMRanker  # noqa: E402

BATCH = 150


def model_with_200_trees() -> str:
    rng = np.random.default_rng(0)
    spec = FeatureSpec.legacy()  # every base feature of fixed vocabulary
    rows = spec.model_rows(np.vstack([probe_rows(seed=s) for s in range(40)]))  # 20,480 rows
    weights = rng.normal(size=len(spec.columns))
    labels = (rows @ weights + rng.normal(size=len(rows)) > 1).astype(int)
    groups = [10] * (len(rows) // 10)
    data = lgb.Dataset(rows, labels, group=groups, feature_name=list(spec.columns),
                       categorical_feature=[spec.columns.index(c) for c in spec.categorical])
    booster = lgb.train({"objective": "lambdarank", "num_leaves": 31, "min_data_in_leaf": 5,
                         "learning_rate": 0.05, "verbosity": -1, "num_threads": 2}, data, 200)
    assert booster.num_trees() == 200
    return str(booster.model_to_string())


def per_row_us(score, batches: list[np.ndarray]) -> float:
    for batch in batches[:50]:
        score(batch)  # warm-up
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for batch in batches:
            score(batch)
        rounds.append((time.perf_counter() - started) / (len(batches) * BATCH) * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=2000)
    args = parser.parse_args()
    text = model_with_200_trees()
    ranker = LightGBMRanker("bench", text)  # every base feature (a card without columns)
    rng = np.random.default_rng(1)
    pool = np.vstack([probe_rows(seed=100 + s) for s in range(4)])
    batches = [pool[rng.integers(0, len(pool), BATCH)] for _ in range(args.batches)]
    lightgbm_us = per_row_us(ranker.score, batches)
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        compiled = ranker.compile(Path(cache))
        compile_s = time.perf_counter() - started
        assert compiled, "lleaves did not compile the model"
        check = np.vstack(batches[:200])
        same = np.allclose(ranker.score(check), ranker._predict_lightgbm(check), rtol=1e-12,
                           atol=1e-12)
        lleaves_us = per_row_us(ranker.score, batches)
    print(f"200 trees × 31 leaves, {len(ranker.spec.columns)} features, batches of {BATCH} rows, "
          f"one thread, median of 5 × {args.batches} batches")
    print(f"LightGBM predict: {lightgbm_us:.2f} µs/row ({lightgbm_us * BATCH:.0f} µs/batch)")
    print(f"lleaves compiled: {lleaves_us:.2f} µs/row ({lleaves_us * BATCH:.0f} µs/batch), "
          f"compiled in {compile_s:.1f}s; predictions identical: {same}")
    print(f"bar ≤ 5 µs/row: {'met' if min(lightgbm_us, lleaves_us) <= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
