"""Per-arm totals: kept incrementally they equal totals of per-user counts, and the delta
method's variance is the sampling variance of click-through when users are the unit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision_worker.learning.experiments.arm_totals import (
    ArmTotals,
    click_through,
    clicks_per_user,
)

user_pairs = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=40)


def counts(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([a for a, _ in pairs], dtype=np.int64)
    y = np.array([min(a, b) for a, b in pairs], dtype=np.int64)
    return x, y


@settings(max_examples=200)
@given(user_pairs, user_pairs)
def test_totals_kept_batch_by_batch_equal_totals_of_the_users(
        first: list[tuple[int, int]], second: list[tuple[int, int]]) -> None:
    size = max(len(first), len(second))
    x1, y1 = (np.resize(a, size) if size and len(a) else np.zeros(size, np.int64)
              for a in counts(first))
    x2, y2 = (np.resize(a, size) if size and len(a) else np.zeros(size, np.int64)
              for a in counts(second))
    kept = ArmTotals.empty("t").updated(np.zeros(size, np.int64), np.zeros(size, np.int64),
                                        x1, y1)
    kept = kept.updated(x1, y1, x2, y2)
    assert kept == ArmTotals.from_users("t", x1 + x2, y1 + y2)


def test_one_exposure_per_user_gives_the_binomial_variance() -> None:
    clicks = np.array([1] * 30 + [0] * 970)
    rate = click_through(ArmTotals.from_users("c", np.ones(1000, np.int64), clicks))
    assert rate is not None
    assert rate.value == pytest.approx(0.03)
    assert rate.variance == pytest.approx(0.03 * 0.97 / 999)


def test_delta_method_variance_matches_the_spread_over_repeated_experiments() -> None:
    rng = np.random.default_rng(7)
    rates, variances = [], []
    for _ in range(400):
        ctr = 0.2 * rng.beta(0.5, 1.5, 2000)          # very uneven users
        exposures = 1 + rng.poisson(rng.gamma(0.5, 8.0, 2000))
        clicks = rng.binomial(exposures, ctr)
        estimate = click_through(ArmTotals.from_users("c", exposures, clicks))
        assert estimate is not None
        rates.append(estimate.value)
        variances.append(estimate.variance)
    assert np.mean(variances) == pytest.approx(np.var(rates), rel=0.15)
    # ... and well above what counting exposures as independent flips says (5 a user)
    naive = np.mean(rates) * (1 - np.mean(rates)) / (2000 * 5)
    assert np.mean(variances) > 1.4 * naive


def test_no_estimate_below_two_users() -> None:
    one = ArmTotals.from_users("c", np.array([3]), np.array([1]))
    assert click_through(one) is None
    assert clicks_per_user(one) is None
    assert click_through(ArmTotals.empty("c")) is None


def test_clicks_per_user_is_a_plain_mean_over_users() -> None:
    estimate = clicks_per_user(ArmTotals.from_users("c", np.array([1, 2, 3, 4]),
                                                    np.array([0, 1, 1, 2])))
    assert estimate is not None
    assert estimate.value == pytest.approx(1.0)
    assert estimate.variance == pytest.approx(np.var([0, 1, 1, 2], ddof=1) / 4)


def test_users_without_exposures_are_not_counted() -> None:
    totals = ArmTotals.from_users("c", np.array([0, 2, 0]), np.array([0, 1, 0]))
    assert (totals.users, totals.exposures, totals.clicks) == (1, 2, 1)


@pytest.mark.parametrize("fields", [(-1, 0, 0, 0, 0, 0), (3, 2, 0, 2, 0, 0)])
def test_impossible_totals_are_refused(fields: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="arm 't'"):
        ArmTotals("t", *fields)
