"""Sample-ratio mismatch: chi-square against the configured shares, alarm at p < 0.001."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision_worker.learning.experiments.sample_ratio import check_sample_ratio


@settings(max_examples=200)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=6), st.integers(1, 10_000))
def test_never_alarms_on_counts_exactly_at_the_shares(weights: list[int], scale: int) -> None:
    check = check_sample_ratio([w * scale for w in weights], weights)
    assert not check.mismatch
    assert check.p_value == pytest.approx(1.0)


@settings(max_examples=200)
@given(st.lists(st.integers(0, 10**6), min_size=2, max_size=6), st.data())
def test_p_value_is_a_probability_and_arm_order_does_not_matter(
        observed: list[int], data: st.DataObject) -> None:
    shares = data.draw(st.lists(st.floats(0.01, 1), min_size=len(observed),
                                max_size=len(observed)))
    check = check_sample_ratio(observed, shares)
    assert 0 <= check.p_value <= 1
    flipped = check_sample_ratio(observed[::-1], shares[::-1])
    assert flipped.p_value == pytest.approx(check.p_value, rel=1e-9, abs=1e-300)


def test_one_point_off_at_100_000_users_alarms_and_half_a_point_does_not() -> None:
    assert check_sample_ratio([51_000, 49_000], [50, 50]).mismatch
    half = check_sample_ratio([50_500, 49_500], [50, 50])
    assert half.chi_square == pytest.approx(10.0)
    assert half.p_value == pytest.approx(0.001565, rel=1e-3)
    assert not half.mismatch


def test_shares_on_any_scale_and_uneven_splits() -> None:
    assert not check_sample_ratio([1_000, 49_000], [0.02, 0.98]).mismatch
    assert not check_sample_ratio([1_000, 49_000], [1, 49]).mismatch
    assert check_sample_ratio([1_400, 48_600], [1, 49]).mismatch


def test_counts_in_an_arm_with_no_share_are_a_certain_mismatch() -> None:
    check = check_sample_ratio([10, 500, 500], [0, 1, 1])
    assert check.mismatch and check.p_value == 0
    assert not check_sample_ratio([0, 500, 500], [0, 1, 1]).mismatch


def test_no_traffic_is_no_mismatch() -> None:
    check = check_sample_ratio([0, 0], [1, 1])
    assert not check.mismatch
    assert "no mismatch" in check.describe()


@pytest.mark.parametrize(("observed", "shares"), [([1, 2], [1]), ([1], [1]), ([-1, 2], [1, 1]),
                                                  ([1, 2], [0, 0]), ([1, 2], [-1, 2])])
def test_bad_input_is_refused(observed: list[int], shares: list[float]) -> None:
    with pytest.raises(ValueError):
        check_sample_ratio(observed, shares)
