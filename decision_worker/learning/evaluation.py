"""Offline evaluation on a later time window: NDCG@1/3/5 of the logged slates; for session
starts (session_groups.py), hit@1, hit@5 and NDCG@5 of what the user then clicked among
*every* candidate the worker would have ranked; AUC of click prediction; catalog coverage
and category diversity of what each model would show first.

Every model is scored on the same examples: the candidate, the production model (the
baseline ranker until a model is promoted) and plain popularity (the smoothed click-through
column), so the table compares like with like.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from decision_worker.learning.examples import Examples
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.features import COLUMN
from decision_worker.ranking.trending import HALF_LIVES_DAYS

Scorer = Callable[[FloatArray], FloatArray]
HISTORY_BUCKETS = ((0, 0, "no history"), (1, 9, "1-9 events"), (10, 29, "10-29"),
                   (30, 10**9, "30+"))
METRICS = ("ndcg@1", "ndcg@3", "ndcg@5", "s_hit@1", "s_hit@5", "s_ndcg@5", "auc", "coverage",
           "diversity")
SESSION_METRICS = ("s_hit@1", "s_hit@5", "s_ndcg@5")


def popularity_scorer(rows: FloatArray) -> FloatArray:
    return rows[:, COLUMN["pop_ctr"]]


def trending_scorer(half_life: int) -> Scorer:
    """What a site would show without edgepick: the most clicked lately (trending.py)."""
    column = COLUMN[f"trend_{half_life}d"]
    return lambda rows: rows[:, column]


def trending_half_life(valid_set: Examples) -> int:
    """The half-life whose trending ranks the validation window best: NDCG@5 of session
    starts among every candidate (the product's own decisions) where there are any, of
    the logged slates otherwise."""
    starts = np.concatenate([[0], np.cumsum(valid_set.group_sizes)]).astype(np.int64)
    best, best_score = HALF_LIVES_DAYS[0], -1.0
    for half_life in HALF_LIVES_DAYS:
        scorer = trending_scorer(half_life)
        users, per_session, _ = session_outcomes(scorer, valid_set)
        if users:
            mean = float(per_session["s_ndcg@5"].mean())
        else:
            scores = scorer(valid_set.x) if len(valid_set) else np.zeros(0)
            mean = _mean([ndcg_at(valid_set.label[starts[g]:starts[g + 1]],
                                  scores[starts[g]:starts[g + 1]], 5)
                          for g in range(valid_set.groups)])
        if mean > best_score:
            best, best_score = half_life, mean
    return best


def primary_metric(candidate: Evaluation) -> str:
    """NDCG@5 of session starts where there are any (the decision the product makes),
    NDCG@1 of logged slates otherwise."""
    return "s_ndcg@5" if len(candidate.session_users) else "ndcg@1"


@dataclass
class Evaluation:
    name: str
    metrics: dict[str, float]
    ndcg1_by_history: dict[str, float]
    # Per session group with kept candidates: its user and each session metric (the
    # paired bootstrap of promotion resamples these by user).
    session_users: list[str] = field(default_factory=list)
    per_session: dict[str, FloatArray] = field(default_factory=dict)
    session_history: np.ndarray = field(  # events the user had before each session start
        default_factory=lambda: np.zeros(0, dtype=np.int64))
    slate_users: list[str] = field(default_factory=list)
    per_slate_ndcg1: FloatArray = field(default_factory=lambda: np.zeros(0))

    def outcomes(self, metric: str) -> tuple[list[str], FloatArray]:
        """(users, per-group values) of a metric, for the paired bootstrap."""
        if metric == "ndcg@1":
            return self.slate_users, self.per_slate_ndcg1
        return self.session_users, self.per_session[metric]


def evaluate(name: str, score: Scorer, examples: Examples, catalog: Catalog) -> Evaluation:
    examples = examples.shuffled(3)  # ties must not fall in display order (see shuffled)
    scores = score(examples.x) if len(examples) else np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(examples.group_sizes)]).astype(np.int64)
    per_group = {k: [] for k in (1, 3, 5)}  # type: dict[int, list[float]]
    by_bucket: dict[str, list[float]] = {label: [] for *_, label in HISTORY_BUCKETS}
    kinds = examples.group_kind or ["slate"] * examples.groups
    slate_users: list[str] = []
    for g in range(examples.groups):
        labels = examples.label[starts[g]:starts[g + 1]]
        if labels.max() <= 0 or kinds[g] != "slate":
            continue
        s = scores[starts[g]:starts[g + 1]]
        for k in per_group:
            per_group[k].append(ndcg_at(labels, s, k))
        slate_users.append(examples.group_user[g] if examples.group_user else str(g))
        history = int(examples.group_history[g])
        for low, high, label in HISTORY_BUCKETS:
            if low <= history <= high:
                by_bucket[label].append(per_group[1][-1])
    metrics = {f"ndcg@{k}": _mean(v) for k, v in per_group.items()}
    # Click prediction among what was shown together: the logged slates' rows (a session
    # group's sampled negatives are not comparable across groups).
    slate_rows = np.repeat(np.array([k == "slate" for k in kinds], dtype=bool),
                           examples.group_sizes)
    weights = examples.weights()  # a sampled slate without a click stands for several
    metrics["auc"] = auc(examples.label[slate_rows] > 0, scores[slate_rows],
                         np.repeat(weights, examples.group_sizes)[slate_rows])
    firsts = first_choices(score, examples)
    keyed = [key for _, key in firsts]
    placements = set(examples.group_placement)
    catalog_size = sum(len(catalog.placements[p].variants) for p in placements
                       if p in catalog.placements)
    metrics["coverage"] = len(set(keyed)) / catalog_size if catalog_size else float("nan")
    metrics["diversity"] = entropy([catalog.category_of.get(k, "?") for k in keyed],
                                   [float(weights[g]) for g, _ in firsts])
    users, per_session, histories = session_outcomes(score, examples)
    metrics.update({m: _mean(list(per_session[m])) for m in SESSION_METRICS})
    return Evaluation(name, metrics, {k: _mean(v) for k, v in by_bucket.items()}, users,
                      per_session, histories, slate_users, np.array(per_group[1]))


def first_choices(score: Scorer, examples: Examples, chunk: int = 2_000
                  ) -> list[tuple[int, str]]:
    """(group, "placement/variant" the model would put first), per group with kept
    candidates.
    Scored `chunk` groups at a time: one call per group cost seconds, all at once would
    copy every kept row (scores of a row do not depend on the rows beside it)."""
    kept = [(g, placement, found) for g, (placement, found) in enumerate(zip(
        examples.group_placement, examples.candidates, strict=True)) if found and found[1]]
    out: list[tuple[int, str]] = []
    for start in range(0, len(kept), chunk):
        part = kept[start:start + chunk]
        scores = score(np.vstack([rows for _, _, (rows, _) in part]))
        sizes = np.array([len(ids) for _, _, (_, ids) in part], dtype=np.int64)
        firsts = _first_best(scores, sizes)
        out.extend((g, f"{placement}/{ids[i]}")
                   for (g, placement, (_, ids)), i in zip(part, firsts.tolist(), strict=True))
    return out


def _first_best(scores: FloatArray, sizes: np.ndarray) -> np.ndarray:
    """Per run of `sizes` scores (none empty), the position of its first highest score, as
    `np.argmax` of each (which takes a NaN as the highest)."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    if np.isnan(scores).any():
        return np.array([int(np.argmax(scores[a:a + n])) for a, n in
                         zip(starts.tolist(), sizes.tolist(), strict=True)], dtype=np.int64)
    best = np.flatnonzero(scores == np.repeat(np.maximum.reduceat(scores, starts), sizes))
    return best[np.searchsorted(best, starts)] - starts


def session_outcomes(score: Scorer, examples: Examples
                     ) -> tuple[list[str], dict[str, FloatArray], np.ndarray]:
    """Per session group with every candidate kept: its user, hit@1, hit@5, NDCG@5 of the
    variants the user clicked, among all candidates ranked by `score`, and the user's
    events before it."""
    starts = np.concatenate([[0], np.cumsum(examples.group_sizes)]).astype(np.int64)
    users: list[str] = []
    history: list[int] = []
    values: dict[str, list[float]] = {m: [] for m in SESSION_METRICS}
    for g, kept in enumerate(examples.candidates):
        if kept is None or not kept[1] or examples.group_kind[g] != "session":
            continue
        rows = slice(starts[g], starts[g + 1])
        truth = {v for v, label in zip(examples.variant[rows], examples.label[rows],
                                       strict=True) if label > 0}
        order = np.argsort(-score(kept[0]), kind="stable")[:5]
        hits = np.array([kept[1][i] in truth for i in order], dtype=np.float64)
        discounts = 1.0 / np.log2(np.arange(2, 2 + len(hits)))
        ideal = discounts[:min(len(truth), len(hits))].sum()
        users.append(examples.group_user[g])
        history.append(int(examples.group_history[g]))
        values["s_hit@1"].append(float(hits[:1].sum() > 0))
        values["s_hit@5"].append(float(hits.sum() > 0))
        values["s_ndcg@5"].append(float((hits * discounts).sum() / ideal) if ideal else 0.0)
    return users, {m: np.array(v) for m, v in values.items()}, np.array(history, np.int64)


def ndcg_at(labels: np.ndarray, scores: FloatArray, k: int) -> float:
    order = np.argsort(-scores, kind="stable")[:k]
    discounts = 1.0 / np.log2(np.arange(2, 2 + len(order)))
    dcg = float(((2.0 ** labels[order] - 1) * discounts).sum())
    ideal = np.sort(labels)[::-1][:k]
    idcg = float(((2.0 ** ideal - 1) * discounts[:len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0


def auc(positive: np.ndarray, scores: FloatArray, weights: FloatArray | None = None
        ) -> float:
    """Area under the ROC curve: the chance a positive row outscores a negative one, ties
    counted half (Mann-Whitney), each row counted `weights` times (default once)."""
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    total_pos, total_neg = float(w[positive].sum()), float(w[~positive].sum())
    if not positive.any() or positive.all():
        return float("nan")
    values, tie = np.unique(scores, return_inverse=True)
    pos = np.bincount(tie, weights=w * positive, minlength=len(values))
    neg = np.bincount(tie, weights=w * ~positive, minlength=len(values))
    below = np.cumsum(neg) - neg  # negatives' weight under each distinct score
    return float((pos * (below + neg / 2)).sum() / (total_pos * total_neg))


def entropy(values: list[str], weights: list[float] | None = None) -> float:
    """Shannon entropy in bits of the values' distribution, each value counted `weights`
    times (default once)."""
    if not values:
        return 0.0
    counts: dict[str, float] = {}
    for value, weight in zip(values, weights or [1.0] * len(values), strict=True):
        counts[value] = counts.get(value, 0.0) + weight
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
