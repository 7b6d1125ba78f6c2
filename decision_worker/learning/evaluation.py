"""Offline evaluation on a later time window: NDCG@1/3/5 of the logged slates, AUC of click
prediction, catalog coverage and category diversity of what each model would show first.

Every model is scored on the same examples: the candidate, the production model (the
baseline ranker until a model is promoted) and plain popularity (the smoothed click-through
column), so the table compares like with like.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from decision_worker.learning.examples import Examples
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.features import COLUMN

Scorer = Callable[[FloatArray], FloatArray]
HISTORY_BUCKETS = ((0, 0, "no history"), (1, 9, "1-9 events"), (10, 29, "10-29"),
                   (30, 10**9, "30+"))
METRICS = ("ndcg@1", "ndcg@3", "ndcg@5", "auc", "coverage", "diversity")


def popularity_scorer(rows: FloatArray) -> FloatArray:
    return rows[:, COLUMN["pop_ctr"]]


@dataclass
class Evaluation:
    name: str
    metrics: dict[str, float]
    ndcg1_by_history: dict[str, float]


def evaluate(name: str, score: Scorer, examples: Examples, catalog: Catalog) -> Evaluation:
    examples = examples.shuffled(3)  # ties must not fall in display order (see shuffled)
    scores = score(examples.x) if len(examples) else np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(examples.group_sizes)]).astype(np.int64)
    per_group = {k: [] for k in (1, 3, 5)}  # type: dict[int, list[float]]
    by_bucket: dict[str, list[float]] = {label: [] for *_, label in HISTORY_BUCKETS}
    for g in range(examples.groups):
        labels = examples.label[starts[g]:starts[g + 1]]
        if labels.max() <= 0:
            continue
        s = scores[starts[g]:starts[g + 1]]
        for k in per_group:
            per_group[k].append(ndcg_at(labels, s, k))
        history = int(examples.group_history[g])
        for low, high, label in HISTORY_BUCKETS:
            if low <= history <= high:
                by_bucket[label].append(per_group[1][-1])
    metrics = {f"ndcg@{k}": _mean(v) for k, v in per_group.items()}
    metrics["auc"] = auc(examples.label > 0, scores)
    keyed = [f"{placement}/{kept[1][int(np.argmax(score(kept[0])))]}"
             for placement, kept in zip(examples.group_placement, examples.candidates,
                                        strict=True) if kept is not None and kept[1]]
    placements = set(examples.group_placement)
    catalog_size = sum(len(catalog.placements[p].variants) for p in placements
                       if p in catalog.placements)
    metrics["coverage"] = len(set(keyed)) / catalog_size if catalog_size else float("nan")
    metrics["diversity"] = entropy([catalog.category_of.get(k, "?") for k in keyed])
    return Evaluation(name, metrics, {k: _mean(v) for k, v in by_bucket.items()})


def ndcg_at(labels: np.ndarray, scores: FloatArray, k: int) -> float:
    order = np.argsort(-scores, kind="stable")[:k]
    discounts = 1.0 / np.log2(np.arange(2, 2 + len(order)))
    dcg = float(((2.0 ** labels[order] - 1) * discounts).sum())
    ideal = np.sort(labels)[::-1][:k]
    idcg = float(((2.0 ** ideal - 1) * discounts[:len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0


def auc(positive: np.ndarray, scores: FloatArray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    positives = int(positive.sum())
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def entropy(values: list[str]) -> float:
    """Shannon entropy in bits of the values' distribution."""
    if not values:
        return 0.0
    counts = Counter(values)
    total = len(values)
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
