"""The normal-mixture confidence sequence: wider than a fixed-horizon interval, shrinking
with information, and its p-value agrees with it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision_worker.learning.experiments.confidence_sequence import (
    mixture_half_width,
    mixture_p_value,
)


def test_wider_than_the_fixed_horizon_interval_and_shrinking_with_information() -> None:
    widths = [mixture_half_width(v, 0.05 ** 2, 0.05) for v in (1e-2, 1e-3, 1e-4, 1e-5)]
    assert widths == sorted(widths, reverse=True)
    for v, w in zip((1e-2, 1e-3, 1e-4, 1e-5), widths, strict=True):
        assert w > 1.96 * math.sqrt(v)


def test_no_information_gives_an_infinite_interval() -> None:
    assert mixture_half_width(0.0, 0.01, 0.05) == math.inf
    assert mixture_p_value(-1.0, 0.0, 0.0, 0.01) == 1.0


@settings(max_examples=300)
@given(st.floats(-1, 1), st.floats(-1, 1), st.floats(1e-8, 1), st.floats(1e-6, 1),
       st.floats(0.001, 0.5))
def test_p_value_below_alpha_exactly_when_the_null_is_outside(
        estimate: float, null: float, variance: float, mixture: float, alpha: float) -> None:
    half = mixture_half_width(variance, mixture, alpha)
    p = mixture_p_value(estimate, null, variance, mixture)
    assert 0 <= p <= 1
    distance = abs(estimate - null)
    if not math.isclose(distance, half, rel_tol=1e-6):
        assert (p < alpha) == (distance > half)


def test_peeking_every_look_keeps_the_error_near_alpha() -> None:
    # A null random walk observed 400 times: the fixed 95 % interval is crossed at some look
    # in most runs, the 95 % sequence in at most 5 % of them.
    rng = np.random.default_rng(3)
    steps = rng.normal(size=(2000, 400))
    n = np.arange(1, 401)
    means = steps.cumsum(axis=1) / n
    variance = 1 / n
    fixed = (np.abs(means) > 1.96 * np.sqrt(variance)).any(axis=1).mean()
    widths = np.array([mixture_half_width(v, 0.05, 0.05) for v in variance])
    sequential = (np.abs(means) > widths).any(axis=1).mean()
    assert fixed > 0.3
    assert sequential <= 0.05


@pytest.mark.parametrize(("variance", "mixture", "alpha"), [(1.0, 0.0, 0.05), (1.0, 1.0, 0.0),
                                                            (1.0, 1.0, 1.0)])
def test_bad_parameters_are_refused(variance: float, mixture: float, alpha: float) -> None:
    with pytest.raises(ValueError):
        mixture_half_width(variance, mixture, alpha)
