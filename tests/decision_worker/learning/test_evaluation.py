"""The offline metrics on cases worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decision_worker.learning.evaluation import auc, entropy, ndcg_at


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
