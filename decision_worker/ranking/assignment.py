"""A user's arm in an experiment, sticky in their profile, and which decisions are scored in
shadow. Pure: the worker (online/experiment_arms.py) calls it with the profile it holds.

The arm is drawn once, by `experiment.arm_of` on the bucket of the tag the profile is keyed
by (the profile owner's), at the first decision that falls in the experiment while it ramps,
and then read back from `Profile.arms` for the experiment's life. The ramp only widens the
treatment, so for one tag the stored arm and a fresh draw agree; they may differ only after
an identity merge, where the stored arm is the one that holds (profile.py: the known user's
arms win, arms only the anonymous profile had are adopted). A user outside the experiment
at this step has no arm stored and may enter the treatment at a later step.
"""

from __future__ import annotations

from collections.abc import Collection

from decision_worker.ranking.experiment import Experiment, arm_of, bucket_of
from decision_worker.ranking.profile import MAX_ARMS, Profile
from edge_functions.bucketing import gbhash


def arm_for(profile: Profile, experiment: Experiment, tag: str) -> str | None:
    """The user's arm while `experiment` ramps (stored on first assignment), or None:
    outside it, served production."""
    stored = profile.arms.get(experiment.id)
    if stored is not None:
        return stored
    if experiment.status != "ramping":
        return None
    arm = arm_of(bucket_of(experiment, tag), experiment.share)
    if arm is not None and len(profile.arms) < MAX_ARMS:
        profile.arms[experiment.id] = arm
    return arm


def drop_ended_arms(profile: Profile, active: Collection[str]) -> None:
    """Forget the arms of experiments no longer active (keeps `arms` bounded)."""
    if any(experiment not in active for experiment in profile.arms):
        profile.arms = {e: a for e, a in profile.arms.items() if e in active}


def shadow_due(experiment: Experiment, tag: str, decided_at: int) -> bool:
    """Whether this decision is also scored by the experiment's model in shadow: a share
    `shadow_share` of decisions, drawn from the user and the decision's time, so the worker
    and a redelivery draw the same."""
    if experiment.shadow_share >= 1:
        return True
    return gbhash(f"{experiment.hash_seed}/shadow", f"{tag}/{decided_at}") \
        < experiment.shadow_share
