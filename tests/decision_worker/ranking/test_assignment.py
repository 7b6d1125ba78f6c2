"""Sticky arms in the profile: drawn once, kept, merged (the known user's win), dropped when
the experiment ends; and which decisions a model in shadow scores."""

from __future__ import annotations

from decision_worker.ranking.assignment import arm_for, drop_ended_arms, shadow_due
from decision_worker.ranking.experiment import Experiment, arm_of, bucket_of
from decision_worker.ranking.profile import MAX_ARMS, Profile


def rollout(**changes: object) -> Experiment:
    return Experiment("rollout-1", "lgbm-2", "lgbm-1", status="ramping").with_(**changes)


def tag_in(e: Experiment, arm: str | None, start: int = 0) -> str:
    return next(t for t in (f"tag{i}" for i in range(start, 100_000))
                if arm_of(bucket_of(e, t), e.share) == arm)


def test_the_arm_is_drawn_once_then_read_from_the_profile() -> None:
    e = rollout(step_index=2)
    profile, tag = Profile(), tag_in(e, "treatment")
    assert arm_for(profile, e, tag) == "treatment" and profile.arms == {"rollout-1": "treatment"}
    # whatever a fresh draw says now (another tag's bucket, after a merge), the stored arm
    assert arm_for(profile, e, tag_in(e, "control")) == "treatment"
    outside = Profile()
    assert arm_for(outside, e, tag_in(e, None)) is None and outside.arms == {}


def test_no_arm_is_drawn_in_shadow_and_the_dict_is_bounded() -> None:
    shadow = rollout(status="shadow")
    profile = Profile()
    assert arm_for(profile, shadow, tag_in(rollout(), "control")) is None  # not "control"
    assert profile.arms == {}
    full = Profile(arms={f"old-{i}": "control" for i in range(MAX_ARMS)})
    e = rollout(step_index=3)
    assert arm_for(full, e, tag_in(e, "control")) == "control"  # served, not stored
    assert len(full.arms) == MAX_ARMS
    drop_ended_arms(full, {"old-0"})
    assert full.arms == {"old-0": "control"}


def test_arms_round_trip_and_old_profiles_have_none() -> None:
    profile = Profile(arms={"rollout-1": "control"})
    assert Profile.loads(profile.dumps()).arms == {"rollout-1": "control"}
    old = Profile.loads(b'{"v":3,"u":100.0,"f":1.0,"s":1,"ls":1.0,"t":[0,0,0,0,0,0,0],'
                        b'"c":{},"va":{},"sn":{},"tr":{},"tra":0,"cx":{},"cxa":0,'
                        b'"ap":[],"ln":[],"mi":null,"h":null}')
    assert old.arms == {} and old.updated_at == 100.0


def test_a_merge_keeps_the_known_users_arms_and_adopts_the_others() -> None:
    known = Profile(updated_at=5.0, arms={"exp-a": "control"})
    anonymous = Profile(updated_at=4.0, arms={"exp-a": "treatment", "exp-b": "treatment"})
    assert known.merge(anonymous, "anon-tag")
    assert known.arms == {"exp-a": "control", "exp-b": "treatment"}
    # an empty anonymous profile (never decided) changes nothing; nor does an opted-out one
    assert known.merge(Profile(), "anon-2") and known.arms == {"exp-a": "control",
                                                                "exp-b": "treatment"}
    bare = Profile(updated_at=1.0)
    opted_out = Profile(updated_at=2.0, consent_at=2.0, opted_out=True)
    assert bare.merge(opted_out, "anon-3") and bare.arms == {}


def test_an_opt_out_forgets_the_arms() -> None:
    profile = Profile(updated_at=1.0, arms={"exp-a": "treatment"})
    profile.clear_personal_data()
    assert profile.arms == {}


def test_shadow_scores_its_share_of_decisions_by_user_and_time() -> None:
    e = rollout(status="shadow", shadow_share=0.25)
    draws = [shadow_due(e, f"tag{i}", 1_700_000_000 + i % 7) for i in range(4000)]
    assert 0.22 < sum(draws) / len(draws) < 0.28
    assert draws == [shadow_due(e, f"tag{i}", 1_700_000_000 + i % 7) for i in range(4000)]
    # the same user is drawn again at another decision time
    assert {shadow_due(e, "tag1", t) for t in range(1_700_000_000, 1_700_000_050)} == {
        True, False}
    assert all(shadow_due(rollout(status="shadow"), f"tag{i}", 0) for i in range(100))
