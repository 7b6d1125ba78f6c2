"""MovieLens as a site's history, and the baselines the product must beat, for quality.py.

Movies are the variants of one placement (`movies`): genres their category and tags. Each
rating is a `Variant Viewed` at its time and, when it is 4 stars or more, a `Variant
Clicked` ("liked"); a gap of more than an hour in a user's ratings starts a session, whose
`Session Started` comes a second before its first rating. Baselines are computed causally
from the same events (nothing at or after the moment of a decision), each excluding what the
user already consumed: all-time popularity, trending (likes decayed with a half-life chosen
on a validation slice before the split) and item-kNN (cosine over co-likes before the
split) blended with trending. Intervals are bootstrapped over users (a heavy user's many
sessions move together).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

PLACEMENT = "movies"
SESSION_GAP_S = 3600
LIKED = 4.0
K = 5
TEMPLATE = '{"id": {{ variant.id | tojson }}, "title": {{ variant.title | tojson }}}\n'
POLICY = "kind: row\nslots: 5\nexclude: [view, click, conversion]\n"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64] or "none"


@dataclass
class Data:
    ratings: pd.DataFrame  # user, item (index), variant, ts, liked, session; by (ts, user)
    variants: list[str]  # item index → variant id
    sessions: pd.DataFrame  # session, user, start (unix seconds), by start


def load(folder: Path) -> Data:
    movies = pd.read_csv(folder / "movies.csv")
    ratings = pd.read_csv(folder / "ratings.csv")
    index = {m: i for i, m in enumerate(movies.movieId)}
    r = pd.DataFrame({"user": "ml-" + ratings.userId.astype(str),
                      "item": ratings.movieId.map(index), "ts": ratings.timestamp,
                      "liked": ratings.rating >= LIKED})
    r = r.sort_values(["user", "ts"], kind="stable")
    gap = r.groupby("user").ts.diff().fillna(SESSION_GAP_S + 1)
    r["session"] = (gap > SESSION_GAP_S).cumsum()
    r = r.sort_values(["ts", "user"], kind="stable").reset_index(drop=True)
    variants = [f"m{m}" for m in movies.movieId]
    r["variant"] = [variants[i] for i in r.item]
    sessions = (r.groupby("session").agg(user=("user", "first"), start=("ts", "min"))
                .reset_index().sort_values(["start", "session"]).reset_index(drop=True))
    sessions["start"] -= 1  # the session starts a second before its first rating
    return Data(r, variants, sessions)


def write_content(folder: Path, movies: pd.DataFrame, default: str,
                  exploration: float | None = None) -> None:
    """The `movies` placement as a content folder (one JSON variant file per movie);
    `exploration`: the placement's share of explored first slots (None: the default)."""
    placement = folder / PLACEMENT
    placement.mkdir(parents=True)
    (placement / "_template.json.j2").write_text(TEMPLATE)
    (placement / "_placement.yaml").write_text(
        POLICY + ("" if exploration is None else f"exploration: {exploration}\n"))
    for movie in movies.itertuples():
        genres = [slug(g) for g in str(movie.genres).split("|")]
        title = "".join(c if c.isprintable() else " " for c in str(movie.title))[:500]
        variant = f"m{movie.movieId}"
        (placement / f"{variant}.json").write_text(json.dumps({
            "id": variant, "title": title or variant, "category": genres[0],
            "tags": sorted(set(genres)), "default": variant == default}))


def messages(rows: pd.DataFrame, sessions: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Segment messages for `rows` (ratings) and the starts of `sessions`, in time order."""
    starts = {int(s.session): s for s in sessions.itertuples()}
    emitted: set[int] = set()
    for row in rows.itertuples():
        session = int(row.session)
        if session in starts and session not in emitted:
            emitted.add(session)
            yield session_start(row.user, session, int(starts[session].start))
        yield track(row.user, "Variant Viewed", f"v-{row.user}-{row.variant}", int(row.ts),
                    row.variant)
        if row.liked:
            yield track(row.user, "Variant Clicked", f"c-{row.user}-{row.variant}",
                        int(row.ts), row.variant)


def session_start(user: str, session: int, at: int) -> dict[str, Any]:
    return {"type": "track", "event": "Session Started", "userId": user,
            "messageId": f"s-{session}", "timestamp": iso(at)}


def track(user: str, name: str, message_id: str, at: int, variant: str) -> dict[str, Any]:
    return {"type": "track", "event": name, "userId": user, "messageId": message_id,
            "timestamp": iso(at), "properties": {"placement": PLACEMENT, "variant": variant}}


def iso(at: float) -> str:
    return pd.Timestamp(int(at), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


# -- baselines ------------------------------------------------------------------------------

class History:
    """What is known at a moment: every rating before it, fed in time order."""

    def __init__(self, items: int, half_life_days: float) -> None:
        self.likes = np.zeros(items)
        self.trend = np.zeros(items)
        self.trend_at: float | None = None
        self.half_life_s = half_life_days * 86_400
        self.consumed: dict[str, set[int]] = defaultdict(set)
        self.liked: dict[str, list[int]] = defaultdict(list)

    def add(self, user: str, item: int, liked: bool, at: float) -> None:
        self.consumed[user].add(item)
        if not liked:
            return
        self.liked[user].append(item)
        self.likes[item] += 1
        if self.trend_at is None or at > self.trend_at:
            if self.trend_at is not None:
                self.trend *= 2.0 ** (-(at - self.trend_at) / self.half_life_s)
            self.trend_at = at
        self.trend[item] += 2.0 ** (-(self.trend_at - at) / self.half_life_s)


def item_similarity(ratings: pd.DataFrame, items: int) -> sparse.csr_matrix:
    """Cosine similarity of items over the users who liked them (the rows given)."""
    liked = ratings[ratings.liked]
    users = {u: i for i, u in enumerate(liked.user.unique())}
    x = sparse.csr_matrix((np.ones(len(liked)), ([users[u] for u in liked.user], liked.item)),
                          shape=(len(users), items))
    x.data[:] = 1.0
    co = (x.T @ x).tocsr()
    norms = np.sqrt(np.asarray(co.diagonal()))
    norms[norms == 0] = 1.0
    co = sparse.diags(1 / norms) @ co @ sparse.diags(1 / norms)
    co.setdiag(0)
    return co.tocsr()


Scorer = Callable[[History, str], np.ndarray]


def scorers(similarity: sparse.csr_matrix, blend: float) -> dict[str, Scorer]:
    def knn(history: History, user: str) -> np.ndarray:
        liked = history.liked.get(user)
        if not liked:
            return np.zeros(similarity.shape[0])
        return np.asarray(similarity[liked].sum(axis=0)).ravel()

    def blended(history: History, user: str) -> np.ndarray:
        personal = knn(history, user)
        trend = history.trend / (history.trend.max() or 1.0)
        if personal.max() <= 0:
            return trend
        return blend * personal / personal.max() + (1 - blend) * trend

    return {"popularity (all-time likes)": lambda h, u: h.likes.copy(),
            "trending": lambda h, u: h.trend.copy(),
            "item-kNN + trending": blended}


def top_k(scores: np.ndarray, consumed: set[int], k: int = K) -> list[int]:
    scores = scores.astype(float).copy()
    if consumed:
        scores[list(consumed)] = -np.inf
    top = np.argpartition(-scores, k)[:k]
    return [int(i) for i in top[np.argsort(-scores[top], kind="stable")]]


# -- metrics ---------------------------------------------------------------------------------

@dataclass
class Outcomes:
    """One row per decision: who, whether they had history, and the metrics."""

    users: list[str] = field(default_factory=list)
    returning: list[bool] = field(default_factory=list)
    rows: list[tuple[float, float, float]] = field(default_factory=list)  # hit@1, hit@5, ndcg@5

    def add(self, user: str, returning: bool, ranked: list[int], truth: set[int]) -> None:
        hits = [i in truth for i in ranked[:K]]
        dcg = sum(h / math.log2(k + 2) for k, h in enumerate(hits))
        ideal = sum(1 / math.log2(k + 2) for k in range(min(K, len(truth))))
        self.users.append(user)
        self.returning.append(returning)
        self.rows.append((float(bool(hits and hits[0])), float(any(hits)), dcg / ideal))


METRICS = ("hit@1", "hit@5", "ndcg@5")


def bootstrap(outcomes: dict[str, Outcomes], group: str, product: str, seed: int = 0,
              rounds: int = 1000) -> dict[str, dict[str, Any]]:
    """{name: {metric: [mean, low, high], "n": decisions, "users": users}} for `group` (all,
    new or returning), resampling users (the same draws for every name), and for `product`
    also "vs <best baseline>": the paired difference [mean, low, high] per metric, the best
    baseline being the one with the highest NDCG@5 in this group."""
    first = next(iter(outcomes.values()))
    keep = np.array([group == "all" or (r == (group == "returning")) for r in first.returning])
    users = np.array(first.users)[keep]
    unique, inverse = np.unique(users, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(unique), size=(rounds, len(unique)))
    weights = np.stack([np.bincount(d, minlength=len(unique))[inverse] for d in draws])
    out: dict[str, dict[str, Any]] = {}
    resampled: dict[str, np.ndarray] = {}
    for name, o in outcomes.items():
        values = np.array(o.rows)[keep]
        resampled[name] = weights @ values / weights.sum(axis=1, keepdims=True)
        point = values.mean(axis=0)
        out[name] = {m: [float(point[j]), *_interval(resampled[name][:, j])]
                     for j, m in enumerate(METRICS)}
        out[name].update(n=int(len(values)), users=int(len(unique)))
    baselines = [n for n in outcomes if n != product]
    best = max(baselines, key=lambda n: out[n]["ndcg@5"][0])
    diff = resampled[product] - resampled[best]
    point = np.array(outcomes[product].rows)[keep].mean(axis=0) - \
        np.array(outcomes[best].rows)[keep].mean(axis=0)
    out[product][f"vs {best}"] = {m: [float(point[j]), *_interval(diff[:, j])]
                                  for j, m in enumerate(METRICS)}
    return out


def _interval(values: np.ndarray) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]
