"""Lift against control: intervals around the estimate, on the right scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision_worker.learning.experiments.arm_totals import ArmTotals, click_through
from decision_worker.learning.experiments.lift import lift_against_control, lifts_against_control


@st.composite
def arms(draw: st.DrawFn) -> ArmTotals:
    size = draw(st.integers(2, 60))
    x = np.array(draw(st.lists(st.integers(1, 20), min_size=size, max_size=size)))
    y = np.array([draw(st.integers(0, int(n))) for n in x])
    if y.sum() == 0:
        y[0] = 1
    return ArmTotals.from_users(draw(st.sampled_from(["a", "b"])), x, y)


@settings(max_examples=200)
@given(arms(), arms())
def test_intervals_contain_the_point_estimate(control: ArmTotals, arm: ArmTotals) -> None:
    lift = lift_against_control(control, arm)
    assert lift is not None
    assert lift.difference_low <= lift.difference <= lift.difference_high
    assert lift.relative_low <= lift.relative <= lift.relative_high
    assert lift.relative_low >= -1


def test_relative_interval_is_the_delta_method_on_the_log_ratio() -> None:
    control = ArmTotals.from_users("control", np.ones(10_000, np.int64),
                                   np.r_[np.ones(500), np.zeros(9_500)].astype(np.int64))
    arm = ArmTotals.from_users("new", np.ones(10_000, np.int64),
                               np.r_[np.ones(550), np.zeros(9_450)].astype(np.int64))
    lift = lift_against_control(control, arm)
    assert lift is not None
    assert lift.relative == pytest.approx(0.10)
    a, c = click_through(arm), click_through(control)
    assert a is not None and c is not None
    spread = 1.959964 * math.sqrt(a.variance / 0.055 ** 2 + c.variance / 0.05 ** 2)
    assert lift.relative_low == pytest.approx(1.1 * math.exp(-spread) - 1, rel=1e-5)
    assert lift.relative_high == pytest.approx(1.1 * math.exp(spread) - 1, rel=1e-5)
    assert lift.difference == pytest.approx(0.005)
    assert lift.difference_high - lift.difference == pytest.approx(
        1.959964 * math.sqrt(a.variance + c.variance), rel=1e-5)
    assert "+10.00%" in lift.describe()


def test_wider_level_gives_a_wider_interval() -> None:
    control = ArmTotals.from_users("c", np.full(500, 4), np.r_[np.ones(100), np.zeros(400)]
                                   .astype(np.int64))
    arm = ArmTotals.from_users("t", np.full(500, 4), np.r_[np.ones(120), np.zeros(380)]
                               .astype(np.int64))
    narrow, wide = lift_against_control(control, arm, 0.8), lift_against_control(control, arm,
                                                                                  0.99)
    assert narrow is not None and wide is not None
    assert wide.relative_low < narrow.relative_low < narrow.relative_high < wide.relative_high


def test_no_lift_before_a_click_in_each_arm() -> None:
    clicked = ArmTotals.from_users("c", np.array([2, 3]), np.array([1, 0]))
    unclicked = ArmTotals.from_users("t", np.array([2, 3]), np.array([0, 0]))
    assert lift_against_control(clicked, unclicked) is None
    assert lift_against_control(unclicked, clicked) is None
    assert lifts_against_control(clicked, [unclicked, clicked]) == {
        "t": None, "c": lift_against_control(clicked, clicked)}
