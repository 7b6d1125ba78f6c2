"""The guardrail: breached only when the always-valid interval lies wholly below the
tolerated drop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decision_worker.learning.experiments.arm_totals import ArmTotals
from decision_worker.learning.experiments.guardrail import (
    MIN_CLICKS_PER_ARM,
    Guardrail,
    check_guardrail,
)

CTR = Guardrail("click_through", max_drop=0.02)


def arm(name: str, users: int, rate: float, seed: int) -> ArmTotals:
    rng = np.random.default_rng(seed)
    exposures = 1 + rng.poisson(3, users)
    return ArmTotals.from_users(name, exposures, rng.binomial(exposures, rate))


def test_a_clearly_worse_treatment_breaches() -> None:
    check = check_guardrail(CTR, arm("c", 50_000, 0.05, 1), arm("t", 50_000, 0.04, 2))
    assert check.breached
    assert check.high < -0.02
    assert check.low < check.relative_lift < check.high
    assert check.p_value < CTR.alpha
    assert "BREACHED" in check.describe()


def test_an_equal_treatment_holds() -> None:
    check = check_guardrail(CTR, arm("c", 50_000, 0.05, 1), arm("t", 50_000, 0.05, 2))
    assert not check.breached
    assert check.low < 0 < check.high
    assert "holds" in check.describe()


def test_a_drop_within_the_tolerance_never_breaches_however_much_data() -> None:
    tolerant = Guardrail("click_through", max_drop=0.10)
    check = check_guardrail(tolerant, arm("c", 400_000, 0.05, 1), arm("t", 400_000, 0.048, 2))
    assert check.high < 0            # surely worse...
    assert not check.breached        # ...but by less than 10 %
    assert check.p_value == 1.0


def test_the_same_data_breaches_a_strict_guardrail_not_a_tolerant_one() -> None:
    control, treatment = arm("c", 100_000, 0.05, 1), arm("t", 100_000, 0.045, 2)
    assert check_guardrail(Guardrail("ctr", 0.0), control, treatment).breached
    assert not check_guardrail(Guardrail("ctr", 0.3), control, treatment).breached


def clicked(name: str, clicks: int) -> ArmTotals:
    return ArmTotals.from_users(name, np.full(100, 5),
                                np.r_[np.ones(clicks), np.zeros(100 - clicks)].astype(np.int64))


def test_nothing_is_decided_before_enough_clicks_in_each_arm() -> None:
    for control, treatment in ((MIN_CLICKS_PER_ARM - 1, 10), (60, MIN_CLICKS_PER_ARM - 1)):
        check = check_guardrail(CTR, clicked("c", control), clicked("t", treatment))
        assert not check.breached
        assert math.isnan(check.relative_lift)
        assert "not enough clicks" in check.describe()
    enough = check_guardrail(CTR, clicked("c", 60), clicked("t", MIN_CLICKS_PER_ARM))
    assert enough.relative_lift == pytest.approx(MIN_CLICKS_PER_ARM / 60 - 1)


@pytest.mark.parametrize("fields", [{"max_drop": -0.1}, {"max_drop": 1.0},
                                    {"max_drop": 0.1, "alpha": 0.0},
                                    {"max_drop": 0.1, "mixture_sd": 0.0}])
def test_impossible_guardrails_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="guardrail ctr"):
        Guardrail("ctr", **fields)
