"""The experiment's shape, its checks and the assignment rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decision_worker.ranking.experiment import (
    CONTROL,
    TREATMENT,
    Experiment,
    ExperimentError,
    GuardrailRule,
    arm_of,
    bucket_of,
    overlapping,
)
from edge_functions.bucketing import gbhash


def rollout(**changes: object) -> Experiment:
    base = Experiment("rollout-1", "lgbm-2", "lgbm-1", status="ramping")
    return base.with_(**changes)


def test_round_trips_through_its_stored_json() -> None:
    experiment = rollout(placements=("hero",), guardrails=(GuardrailRule("click_through", 0.1),),
                         step_index=2, notes={"by": "ops"})
    assert Experiment.loads(experiment.dumps()) == experiment


@pytest.mark.parametrize(("changes", "names"), [
    ({"steps": (1.0, 5.0, 50.0)}, "to 100"),
    ({"steps": (5.0, 1.0, 100.0)}, "increase"),
    ({"steps": (1.0, 75.0, 100.0)}, "75 % would take users from the control"),
    ({"treatment_model": "lgbm-1"}, "already production"),
    ({"treatment_model": "Bad Model"}, "model id"),
    ({"step_index": 5}, "outside"),
    ({"min_exposures": 0}, "min-exposures"),
])
def test_a_bad_experiment_is_refused_with_what_is_wrong(changes: dict[str, object],
                                                        names: str) -> None:
    with pytest.raises(ExperimentError, match=names):
        rollout(**changes)


def test_an_unknown_guardrail_metric_is_refused_by_name() -> None:
    with pytest.raises(ExperimentError) as refused:
        GuardrailRule("revenue", 0.05)
    assert str(refused.value) == ("guardrail metric 'revenue' is unknown: use one of "
                                  "click_through, conversion")


def test_conversion_is_a_guardrail_metric_and_survives_storage() -> None:
    experiment = rollout(guardrails=(GuardrailRule("conversion", 0.05),
                                     GuardrailRule("click_through", 0.02)))
    assert Experiment.loads(experiment.dumps()).guardrails == experiment.guardrails


def test_the_bucket_is_growthbooks_hash_of_the_tag_with_the_experiments_seed() -> None:
    assert bucket_of(rollout(), "tag-a") == gbhash("rollout-1", "tag-a")
    assert bucket_of(rollout(seed="s"), "tag-a") == gbhash("s", "tag-a")


@given(bucket=st.floats(0, 0.9999), shares=st.lists(st.sampled_from([1.0, 5.0, 20.0, 50.0]),
                                                    min_size=2, max_size=4))
def test_ramping_never_moves_a_user_out_of_an_arm(bucket: float, shares: list[float]) -> None:
    arms = [arm_of(bucket, share) for share in sorted(shares)]
    assigned = [arm for arm in arms if arm is not None]
    assert len(set(assigned)) <= 1
    if arms[0] is not None:
        assert all(arm == arms[0] for arm in arms)
    if arms[0] == CONTROL or (assigned and assigned[0] == TREATMENT):
        assert None not in arms[arms.index(assigned[0]):]


def test_one_running_experiment_per_placement() -> None:
    hero = rollout(placements=("hero",))
    assert overlapping(rollout(id="rollout-2", placements=("cta",)), [hero]) is None
    assert overlapping(rollout(id="rollout-2", placements=("hero", "cta")), [hero]) == hero
    assert overlapping(rollout(id="rollout-2"), [hero]) == hero
    assert overlapping(rollout(id="rollout-2"), [hero.with_(status="complete")]) is None


def test_the_personalization_comparison_is_the_holdout_and_an_equal_band_above_it() -> None:
    from decision_worker.ranking.experiment import personalization_arm

    assert personalization_arm(0.05, 0.1) == "holdout"
    assert personalization_arm(0.1, 0.1) == personalization_arm(0.1999, 0.1) == "treatment"
    assert personalization_arm(0.2, 0.1) is None and personalization_arm(None, 0.1) is None
    assert personalization_arm(0.0, 0.0) is None  # no holdout, nothing to compare
