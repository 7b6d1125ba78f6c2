"""The offline metrics on cases worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
