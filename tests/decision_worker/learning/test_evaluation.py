"""The offline metrics on cases worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from decision_worker.learning.evaluation import Evaluation, auc, entropy, ndcg_at
from decision_worker.learning.history_buckets import by_history, describe


def test_ndcg() -> None:
    labels = np.array([0, 2, 1])
    assert ndcg_at(labels, np.array([0.1, 0.9, 0.5]), 3) == pytest.approx(1.0)
    worst = ndcg_at(labels, np.array([0.9, 0.1, 0.5]), 1)
    assert worst == 0.0
    # the conversion (gain 3) second, the click (gain 1) third: (3/log2(3) + 1/2) / ideal
    ideal = 3 + 1 / math.log2(3)
    assert ndcg_at(labels, np.array([0.9, 0.5, 0.1]), 3) == pytest.approx(
        (3 / math.log2(3) + 1 / 2) / ideal)
    assert ndcg_at(np.array([0, 0]), np.array([1.0, 0.0]), 1) == 0.0


def test_auc_counts_ties_half() -> None:
    positive = np.array([True, False, True, False])
    assert auc(positive, np.array([0.9, 0.1, 0.8, 0.2])) == 1.0
    assert auc(positive, np.array([0.1, 0.9, 0.2, 0.8])) == 0.0
    assert auc(positive, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert math.isnan(auc(np.array([True, True]), np.array([0.1, 0.2])))


def test_entropy_in_bits() -> None:
    assert entropy([]) == 0.0
    assert entropy(["a", "a"]) == 0.0
    assert entropy(["a", "b"]) == pytest.approx(1.0)
    assert entropy(["a", "b", "c", "d"]) == pytest.approx(2.0)


def test_buckets_by_history_compare_the_candidate_per_kind_of_user() -> None:
    """Sessions of new users where the candidate loses and of heavy users where it wins:
    the buckets show both, each with its own interval; an empty bucket is left out."""
    users = [f"u{i}" for i in range(40)]
    history = np.array([0] * 20 + [50] * 20)
    mine = np.array([0.2] * 20 + [0.9] * 20)
    theirs = np.array([0.5] * 20 + [0.4] * 20)

    def ev(name: str, values: np.ndarray) -> Evaluation:
        return Evaluation(name, {}, {}, users, {"s_ndcg@5": values}, history)

    buckets = by_history([ev("candidate", mine), ev("trending (30 d)", theirs)], "s_ndcg@5")
    assert list(buckets) == ["no history", "30+"]
    new, heavy = buckets["no history"], buckets["30+"]
    assert new["groups"] == 20 and new["users"] == 20
    assert new["means"] == {"candidate": pytest.approx(0.2), "trending (30 d)": 0.5}
    assert new["vs trending (30 d)"]["value"] == pytest.approx(-0.3)
    assert new["vs trending (30 d)"]["high"] < 0 < heavy["vs trending (30 d)"]["low"]
    line = describe(buckets, "s_ndcg@5", "trending")[1]
    assert line.startswith("30+ (20 sessions, 20 users): s_ndcg@5 candidate 0.9000, "
                           "trending 0.4000; candidate − trending +0.5000 [+0.5000, +0.5000]")


def _auc_by_ranks(positive: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney from average ranks, as the textbook writes it."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # ties share their average rank
        ranks[scores == value] = ranks[scores == value].mean()
    p, n = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - p * (p + 1) / 2) / (p * n))


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6), st.integers(1, 4)),
                min_size=2, max_size=60))
def test_weighted_auc_is_the_auc_of_the_rows_repeated(rows) -> None:
    """A row weighted k counts as k copies of it (a sampled slate stands for several);
    with every weight 1 it is the rank formula's AUC."""
    positive = np.array([r[0] for r in rows])
    scores = np.array([r[1] / 6 for r in rows])
    weights = np.array([r[2] for r in rows], dtype=np.float64)
    if positive.all() or not positive.any():
        assert math.isnan(auc(positive, scores, weights))
        return
    repeated = np.repeat(np.arange(len(rows)), weights.astype(np.int64))
    expected = _auc_by_ranks(positive[repeated], scores[repeated])
    assert auc(positive, scores, weights) == pytest.approx(expected)
    assert auc(positive, scores) == pytest.approx(_auc_by_ranks(positive, scores))


def test_weighted_entropy_counts_a_value_as_often_as_its_weight() -> None:
    assert entropy(["a", "b"], [3.0, 1.0]) == pytest.approx(entropy(["a", "a", "a", "b"]))
