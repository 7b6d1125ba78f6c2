"""What promotion decides on: the offline evaluation's primary metric, or, where edgepick
already decides, the first slot's click-through estimated off-policy.

On a site edgepick decides for, clicks after a session start can only land on what
production served, so a session metric of those clicks favours production by construction.
The decision log's propensities make the fair comparison possible: candidate − production
of the per-decision doubly robust terms, users resampled (off_policy.py).
"""

from __future__ import annotations

from decision_worker.learning.intervals import Interval
from decision_worker.learning.off_policy import OffPolicyReport

# Off-policy click-through of the first slot, doubly robust: what promotion decides on when
# the decision log holds at least MIN_LOGGED_DECISIONS replayed decisions of MIN_LOGGED_USERS
# users in the evaluation window. Otherwise the offline metric decides: its bias favours
# production, so falling back to it can make promotion harder, never easier.
OFF_POLICY_PRIMARY = "dr_ctr@1"
MIN_LOGGED_DECISIONS = 200
MIN_LOGGED_USERS = 30


def promotion_basis(primary: str, comparison: Interval, off_policy: OffPolicyReport | None
                    ) -> tuple[str, Interval]:
    """The metric promotion decides on and candidate − production on it: the off-policy
    paired difference when it rests on enough decisions and users, else the offline
    evaluation's primary metric and its interval."""
    paired = None if off_policy is None else off_policy.comparison
    if (paired is not None and paired.groups >= MIN_LOGGED_DECISIONS
            and paired.users >= MIN_LOGGED_USERS):
        return OFF_POLICY_PRIMARY, paired
    return primary, comparison
