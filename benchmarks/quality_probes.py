"""Probes behind the session-replay bar for returning users (issue 10): which signal, or
which training setting, would lift them above trending? Diagnostics, not bars.

`signals`: simple scorers blended with trending, scored like quality.py's session replay
(returning users only, NDCG@5, difference from trending with users resampled) on the
validation slice before the split and on the test period after it. Looking at the test
period is what makes this a diagnostic: nothing here is used to choose a product setting.

`online`: signals that learn from every rating as it arrives, the test period included, as
a worker keeping collaborative state would: item-kNN over co-likes so far, what follows a
user's last ratings in others' sequences, trending among established users, and user-kNN
(the 50 users whose likes are closest, their likes decayed with a 365-day half-life).

`params`: the product's own training (publish, import, `run_training`'s steps) with several
LightGBM settings or a recency weight per session, judged on the training's test window
(before the split): the by-history bucket of users with 30+ events against trending.

    python benchmarks/quality_probes.py signals
    python benchmarks/quality_probes.py online
    python benchmarks/quality_probes.py params '[{}, {"num_leaves": 31}, {"half_life": 365}]'
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.linalg import svds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import movielens as ml  # noqa: E402
from benchmarks import quality as q  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ml-latest-small"
Signal = Callable[[list[tuple[int, bool]]], np.ndarray]


def genre_matrix(movies: pd.DataFrame) -> np.ndarray:
    names = sorted({g for gs in movies.genres for g in str(gs).split("|")})
    g = np.zeros((len(movies), len(names)))
    for i, gs in enumerate(movies.genres):
        g[i, [names.index(x) for x in str(gs).split("|")]] = 1.0
    return np.asarray(g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9))


def signals(prior: pd.DataFrame, items: int, genres: np.ndarray) -> dict[str, Signal]:
    """{name: user's (item, liked) history in time order → score per item}, from what was
    known before the window (kNN and SVD) or the user's own history (genres)."""
    knn = ml.item_similarity(prior, items)
    liked = prior[prior.liked]
    rows = pd.factorize(liked.user)[0]
    factors = svds(sparse.csr_matrix((np.ones(len(liked)), (rows, liked.item)),
                                     shape=(rows.max() + 1, items)), k=50)[2].T

    def likes(history: list[tuple[int, bool]]) -> list[int]:
        return [i for i, ok in history if ok]

    def cosine(v: np.ndarray) -> np.ndarray:
        return genres @ (v / (np.linalg.norm(v) or 1.0))

    return {"item-kNN of likes": lambda h: np.asarray(knn[likes(h)].sum(axis=0)).ravel(),
            "SVD-50 of likes": lambda h: factors @ factors[likes(h)].sum(axis=0),
            "genres of ratings": lambda h: cosine(genres[[i for i, _ in h]].sum(axis=0)),
            "genres of last 20": lambda h: cosine(genres[[i for i, _ in h[-20:]]].sum(axis=0))}


def probe_signals(data: ml.Data, since: int, until: int, genres: np.ndarray) -> None:
    r = data.ratings
    scorers = signals(r[r.ts < since], len(data.variants), genres)
    history = ml.History(len(data.variants), 365.0)
    order: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    ts, users, items, liked = r.ts.values, r.user.values, r.item.values, r.liked.values
    pointer, rows = 0, defaultdict(list)
    for _, user, moment, truth in q.moments(data, "session replay", since, until):
        while pointer < len(r) and ts[pointer] < moment:
            history.add(users[pointer], int(items[pointer]), bool(liked[pointer]),
                        float(ts[pointer]))
            order[users[pointer]].append((int(items[pointer]), bool(liked[pointer])))
            pointer += 1
        consumed = history.consumed.get(user, set())
        if not consumed or not truth - consumed or not any(ok for _, ok in order[user]):
            continue
        trend = history.trend / history.trend.max()
        scores = {"trending (365 d)": trend}
        for name, signal in scorers.items():
            s = signal(order[user])
            s = s / (np.abs(s).max() or 1.0)
            scores.update({f"{name}, alone": s, f"{name} 0.3 + trending 0.7": 0.3 * s + 0.7 * trend,
                           f"{name} × trending": trend * (0.1 + np.clip(s, 0, None))})
        score_moment(rows, scores, user, consumed, truth)
    print_window(rows, since, until)


class Online:
    """Collaborative state fed every rating in time order (nothing after a moment)."""

    def __init__(self, data: ml.Data, half_life_days: float = 365.0) -> None:
        self.index = {u: i for i, u in enumerate(sorted(set(data.ratings.user)))}
        users, self.items = len(self.index), len(data.variants)
        self.likes = np.zeros((users, self.items), np.float32)  # 1 where liked
        self.decayed = np.zeros((users, self.items), np.float32)  # likes decayed to `at`
        self.at: float | None = None
        self.half_life_s = half_life_days * 86_400
        self.count: dict[str, int] = defaultdict(int)
        self.established = ml.History(self.items, half_life_days)  # likes of users with 100+
        self.sequence: dict[str, list[int]] = defaultdict(list)
        self.pairs: list[tuple[int, int]] = []  # (earlier, later) within 10 ratings
        self.built_at = -1
        self.similar: sparse.csr_matrix | None = None
        self.follows: sparse.csr_matrix | None = None

    def add(self, user: str, item: int, liked: bool, at: float) -> None:
        self.pairs += [(j, item) for j in self.sequence[user][-10:]]
        self.sequence[user].append(item)
        if liked:
            if self.count[user] >= 100:
                self.established.add(user, item, True, at)
            if self.at is not None and at - self.at > 86_400:  # decay once a day at most
                self.decayed *= np.float32(2.0 ** (-(at - self.at) / self.half_life_s))
                self.at = at
            self.at = at if self.at is None else self.at
            self.likes[self.index[user], item] = 1.0
            self.decayed[self.index[user], item] += 1.0
        self.count[user] += 1

    def scores(self, user: str) -> dict[str, np.ndarray]:
        if len(self.pairs) - self.built_at > 2000:  # rebuilt every 2,000 ratings
            self.built_at = len(self.pairs)
            rows, items = np.nonzero(self.likes)
            self.similar = ml.item_similarity(pd.DataFrame(
                {"user": rows, "item": items, "liked": True}), self.items)
            earlier, later = np.array(self.pairs).T
            self.follows = sparse.csr_matrix((np.ones(len(earlier)), (earlier, later)),
                                             shape=(self.items, self.items))
        assert self.similar is not None and self.follows is not None
        u = self.index[user]
        liked = np.flatnonzero(self.likes[u])
        norms = np.sqrt(self.likes.sum(axis=1)) + 1e-9
        closeness = (self.likes @ self.likes[u]) / (norms * norms[u])
        closeness[u] = 0.0
        top = np.argpartition(-closeness, 50)[:50]
        return {"item-kNN of likes so far": np.asarray(
                    self.similar[liked].sum(axis=0)).ravel(),
                "what follows the last 20 ratings": np.asarray(
                    self.follows[self.sequence[user][-20:]].sum(axis=0)).ravel(),
                "trending among users with 100+ ratings": self.established.trend.copy(),
                "user-kNN (50), decayed likes": closeness[top] @ self.decayed[top]}


def probe_online(data: ml.Data, since: int, until: int) -> None:
    r = data.ratings
    history, online = ml.History(len(data.variants), 365.0), Online(data)
    ts, users, items, liked = r.ts.values, r.user.values, r.item.values, r.liked.values
    pointer, rows = 0, defaultdict(list)
    for _, user, moment, truth in q.moments(data, "session replay", since, until):
        while pointer < len(r) and ts[pointer] < moment:
            for state in (history, online):
                state.add(users[pointer], int(items[pointer]), bool(liked[pointer]),
                          float(ts[pointer]))
            pointer += 1
        consumed = history.consumed.get(user, set())
        if not consumed or not truth - consumed:
            continue
        trend = history.trend / history.trend.max()
        scores = {"trending (365 d)": trend}
        for name, s in online.scores(user).items():
            s = s / (np.abs(s).max() or 1.0)
            scores[f"{name}, alone"] = s
            scores[f"{name} 0.3 + trending 0.7"] = 0.3 * s + 0.7 * trend
        score_moment(rows, scores, user, consumed, truth)
    print_window(rows, since, until)


def score_moment(rows: dict[str, list[tuple[str, float]]], scores: dict[str, np.ndarray],
                 user: str, consumed: set[int], truth: set[int]) -> None:
    """Each scorer's NDCG@5 at one session start, what the user consumed left out."""
    for name, s in scores.items():
        outcome = ml.Outcomes()
        outcome.add(user, True, ml.top_k(s, consumed), truth - consumed)
        rows[name].append((user, outcome.rows[0][2]))


def print_window(rows: dict[str, list[tuple[str, float]]], since: int, until: int) -> None:
    window = f"{ml.iso(since)} … {ml.iso(until)}" if until < 2**31 else f"after {ml.iso(since)}"
    print_differences(rows, "trending (365 d)", window)


def print_differences(rows: dict[str, list[tuple[str, float]]], base_name: str,
                      label: str) -> None:
    users = np.array([u for u, _ in rows[base_name]])
    base = np.array([v for _, v in rows[base_name]])
    unique, inverse = np.unique(users, return_inverse=True)
    draws = np.random.default_rng(0).integers(0, len(unique), size=(1000, len(unique)))
    weights = np.stack([np.bincount(d, minlength=len(unique))[inverse] for d in draws])
    print(f"\n{label}: {len(base)} returning sessions of {len(unique)} users (NDCG@5)")
    for name, values in rows.items():
        v = np.array([x for _, x in values])
        low, high = np.percentile(weights @ (v - base) / weights.sum(axis=1), [2.5, 97.5])
        print(f"  {name:58s} {v.mean():.4f}  {v.mean() - base.mean():+.4f} "
              f"[{low:+.4f}, {high:+.4f}]")


def probe_params(data: ml.Data, split: int, grid: list[dict[str, Any]]) -> None:
    """Train on the imported history once per setting; `half_life` (days) weighs each
    session start by its age at the end of the training part (LightGBM row weights)."""
    import lightgbm as lgb

    from benchmarks.processes import Processes
    from decision_worker.ingest.event_log import event_log_from_url
    from decision_worker.ingest.events import DEFAULT_RULES
    from decision_worker.learning import pipeline, training
    from decision_worker.learning.cold_start import choose_below_history
    from decision_worker.learning.evaluation import trending_half_life
    from decision_worker.learning.history_buckets import by_history
    from decision_worker.learning.replay import parse_log
    from decision_worker.ranking.candidates import Catalog
    from decision_worker.ranking.lgbm_ranker import LightGBMRanker
    from decision_worker.ranking.ranker import BaselineRanker
    from edge_functions.keys import MANIFEST_KEY

    with Processes() as procs:
        product = q.Product(procs, data)
        product.publish(DATA)
        product.import_history(split)
        catalog = Catalog.from_bytes(product.redis.get(MANIFEST_KEY))
        log = event_log_from_url(product.env["EDGEPICK_ORIGIN"])
        since = dt.datetime.fromtimestamp(int(data.ratings.ts.min()), dt.UTC)
        until = dt.datetime.fromtimestamp(split, dt.UTC)
        events, _ = parse_log(pipeline.collect(log, since, until), DEFAULT_RULES,
                              log.read_tombstones(), q.SECRET.encode())
        (train_set, valid_set, test_set), _, _ = pipeline.split_by_time(
            events, catalog, 10 * 365 * 86_400, since, until)
        for setting in grid:
            params = dict(setting)
            half_life = params.pop("half_life", None)
            dataset = lgb.Dataset
            if half_life is not None:
                age = train_set.group_time.max() - train_set.group_time
                weight = np.repeat(2.0 ** (-age / (half_life * 86_400)), train_set.group_sizes)
                setattr(lgb, "Dataset", _weighted(dataset, weight, train_set.groups))  # noqa: B010
            try:
                trained = training.train(train_set, valid_set, params)
            finally:
                setattr(lgb, "Dataset", dataset)  # noqa: B010
            days = trending_half_life(valid_set)
            candidate = LightGBMRanker("probe", trained.model_text(), trained.spec,
                                       cold_start_half_life=days)
            choose_below_history(candidate, valid_set)
            evaluations, primary, _ = pipeline.evaluate_side_by_side(
                candidate, BaselineRanker(), days, test_set, catalog)
            heavy = by_history(evaluations[:3], primary)["30+"]
            diff = next(v for k, v in heavy.items() if k.startswith("vs trending"))
            print(f"{json.dumps(setting):45s} rounds {trained.rounds:3d}  30+ events "
                  f"({heavy['groups']} sessions): candidate {heavy['means']['candidate']:.4f}"
                  f", − trending {diff['value']:+.4f} [{diff['low']:+.4f}, "
                  f"{diff['high']:+.4f}]", flush=True)


def _weighted(dataset: Any, weight: np.ndarray, groups: int) -> Any:
    """lgb.Dataset that gives the training set (the one built with `groups` groups and no
    reference) these row weights."""
    class Weighted(dataset):  # type: ignore[misc]
        def __init__(self, data: Any, label: Any = None, **kw: Any) -> None:
            group = kw.get("group")
            if group is not None and len(group) == groups and "reference" not in kw:
                kw["weight"] = weight
            super().__init__(data, label, **kw)
    return Weighted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("probe", choices=("signals", "online", "params"))
    parser.add_argument("grid", nargs="?", default="[{}]", help="params: JSON list of settings")
    args = parser.parse_args()
    data = ml.load(DATA)
    split = int(data.ratings.ts.quantile(q.TRAIN_SHARE))
    if args.probe == "signals":
        genres = genre_matrix(pd.read_csv(DATA / "movies.csv"))
        valid_from = int(data.ratings.ts.quantile(q.TRAIN_SHARE - q.VALIDATION_SHARE))
        probe_signals(data, valid_from, split, genres)
        probe_signals(data, split, 2**62, genres)
    elif args.probe == "online":
        valid_from = int(data.ratings.ts.quantile(q.TRAIN_SHARE - q.VALIDATION_SHARE))
        probe_online(data, valid_from, split)
        probe_online(data, split, 2**62)
    else:
        probe_params(data, split, json.loads(args.grid))


if __name__ == "__main__":
    main()
