"""The ramp rule: roll back on any breach, hold on SRM or too little data, otherwise one
step up; shares only ever grow until a rollback."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision_worker.learning.experiments.guardrail import Guardrail, GuardrailCheck
from decision_worker.learning.experiments.ramp import (
    DEFAULT_STEPS,
    RolloutState,
    decide_ramp,
)
from decision_worker.learning.experiments.sample_ratio import (
    SampleRatioCheck,
    check_sample_ratio,
)

BALANCED = check_sample_ratio([100, 5_000], [1, 50])
SKEWED = check_sample_ratio([400, 5_000], [1, 50])


def guardrail_check(breached: bool, metric: str = "click_through") -> GuardrailCheck:
    lift = -0.2 if breached else -0.01
    return GuardrailCheck(Guardrail(metric, 0.02), lift, lift - 0.05, lift + 0.05,
                          0.01 if breached else 1.0, breached)


def state(step_index: int = 1, treatment: int = 50_000, control: int = 50_000,
          checks: tuple[GuardrailCheck, ...] = (guardrail_check(False),),
          ratio: SampleRatioCheck = BALANCED) -> RolloutState:
    return RolloutState(DEFAULT_STEPS, step_index, treatment, control, 40_000, checks, ratio)


def test_advances_one_step_once_the_gate_passes() -> None:
    decision = decide_ramp(state())
    assert (decision.action, decision.share) == ("advance", 20.0)
    assert "(5 %) → 20 %" in decision.reason and "click_through" in decision.reason


def test_rolls_back_on_a_breach_whatever_else_holds() -> None:
    for index in range(len(DEFAULT_STEPS)):
        decision = decide_ramp(state(index, 10, 10, (guardrail_check(False),
                                                     guardrail_check(True, "conversion")),
                                     SKEWED))
        assert (decision.action, decision.share) == ("roll_back", 0.0)
        assert "conversion" in decision.reason and "BREACHED" in decision.reason


def test_holds_on_a_sample_ratio_mismatch_even_with_enough_exposures() -> None:
    decision = decide_ramp(state(ratio=SKEWED))
    assert (decision.action, decision.share) == ("hold", 5.0)
    assert "MISMATCH" in decision.reason


@pytest.mark.parametrize(("treatment", "control"), [(39_999, 50_000), (50_000, 39_999)])
def test_holds_until_each_arm_has_its_minimum(treatment: int, control: int) -> None:
    decision = decide_ramp(state(treatment=treatment, control=control))
    assert (decision.action, decision.share) == ("hold", 5.0)
    assert "39,999 of 40,000" in decision.reason


def test_completes_at_the_last_step() -> None:
    decision = decide_ramp(state(step_index=4, treatment=0, control=0))
    assert (decision.action, decision.share) == ("complete", 100.0)


def test_advances_without_guardrails_saying_so() -> None:
    assert "no guardrails set" in decide_ramp(state(checks=())).reason


@pytest.mark.parametrize("steps", [(), (1.0, 50.0), (5.0, 1.0, 100.0), (0.0, 100.0),
                                   (1.0, 1.0, 100.0)])
def test_steps_must_increase_to_100(steps: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="steps"):
        RolloutState(steps, 0, 0, 0, 1, (), BALANCED)


def test_step_index_must_be_a_step() -> None:
    with pytest.raises(ValueError, match="step index"):
        state(step_index=5)


looks = st.lists(st.tuples(st.integers(0, 80_000), st.integers(0, 80_000), st.booleans(),
                           st.booleans(), st.booleans()), min_size=1, max_size=40)


@settings(max_examples=300)
@given(st.lists(st.floats(0.1, 99.9), min_size=0, max_size=5, unique=True), looks)
def test_shares_only_grow_and_never_past_a_breach(
        inner: list[float], sequence: list[tuple[int, int, bool, bool, bool]]) -> None:
    steps = (*sorted(inner), 100.0)
    index = 0
    for treatment, control, breached, skewed, also_fine in sequence:
        checks = (guardrail_check(breached),) + ((guardrail_check(False),) if also_fine else ())
        before = steps[index]
        decision = decide_ramp(RolloutState(steps, index, treatment, control, 40_000, checks,
                                            SKEWED if skewed else BALANCED))
        if breached:
            assert (decision.action, decision.share) == ("roll_back", 0.0)
            return
        assert decision.action != "roll_back"
        assert decision.share >= before
        if decision.action == "advance":
            assert not skewed and min(treatment, control) >= 40_000
            index += 1
            assert decision.share == steps[index] and not math.isclose(decision.share, before)
        elif decision.action == "complete":
            assert index == len(steps) - 1
            return
        else:
            assert decision.share == before
