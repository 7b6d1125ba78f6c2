"""Off-policy evaluation of the first slot: how often users would have clicked what another
policy puts first, estimated from what the logging policy served, with which probability
(the decision log, ingest/decision_log.py), and what users then clicked.

For each logged decision i at a session start (served a_i with propensity p_i; reward
r_i = 1 when the user clicked a_i in that placement before their next session start, at
most `SESSION_WINDOW_S` later), the replay rebuilds the worker's candidates and rows at that
moment (replayed_decisions.py; with the trait columns each target policy reads) and the
target policy's probability pi_i(a) of putting each variant first: the policy's scores
under the placement's policy, exploration included
(`first_slot_probabilities`, the rule the worker draws with). With w_i = pi_i(a_i) / p_i:

    IPS   = mean(w_i r_i)                                         unbiased, high variance
    SNIPS = sum(w_i r_i) / sum(w_i)                  self-normalised: a little bias, less
    DR    = mean(sum_a pi_i(a) rhat_i(a) + w_i (r_i - rhat_i(a_i)))       doubly robust

rhat is the variant's smoothed click-through as of the decision (the `pop_ctr` feature:
causal and crude; DR stays unbiased whatever rhat is when the propensities are right, and
has less variance where rhat is good). Intervals: 95 % bootstrap over users
(intervals.py), since one user's decisions move together.

Promotion reads the paired form: candidate − production of the per-decision DR terms, with
users resampled (`OffPolicyReport.comparison`). Where edgepick already decides, it is the
fair comparison: clicks after a session start can only land on what production served, so
a session metric of those clicks favours production by construction.

Evaluated: the treatment arm's decisions at session starts (found in the replay by the
user's tag and the decision's second); the holdout's (always the default) and re-decisions
after a click are counted, not evaluated. A target that would rarely have served what was
logged learns only from the explored decisions (`support`), and its intervals say so.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decision_worker.ingest.events import Event
from decision_worker.learning.intervals import Interval, paired_difference, ratio_interval
from decision_worker.learning.replay import Replay
from decision_worker.learning.replayed_decisions import moment_rows, ranker_rows
from decision_worker.learning.session_groups import (
    SESSION_WINDOW_S,
    Engaged,
    engaged_after,
    next_session_starts,
)
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.decide import first_slot_probabilities
from decision_worker.ranking.features import COLUMN
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.ranker import Ranker
from edge_functions.decision_record import HOLDOUT_ARM
from edge_functions.keys import user_tag


@dataclass(frozen=True)
class OffPolicyEstimate:
    policy: str
    ips: Interval
    snips: Interval
    dr: Interval
    support: float  # share of decisions where the policy could have served what was logged


@dataclass(frozen=True)
class OffPolicyReport:
    logged: int  # treatment decisions in the window
    replayed: int  # found in the replay and evaluated
    logged_ctr: Interval  # the logging policy's own click-through (on-policy)
    estimates: list[OffPolicyEstimate]
    # DR of the first policy − DR of the second, decision by decision, users resampled
    # (None with fewer than two policies or no decision replayed)
    comparison: Interval | None = None


@dataclass
class Outcomes:
    """One entry per replayed decision; per target policy, pi(a_i) and sum_a pi(a) rhat(a)."""

    users: list[str] = field(default_factory=list)
    propensity: list[float] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    rhat_served: list[float] = field(default_factory=list)
    target: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    direct: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def estimate(policy: str, users: list[str], propensity: FloatArray, reward: FloatArray,
             target: FloatArray, direct: FloatArray, rhat_served: FloatArray
             ) -> OffPolicyEstimate:
    """IPS, SNIPS and DR of one target policy, each with its 95 % interval over users."""
    w = np.asarray(target) / np.asarray(propensity)
    r = np.asarray(reward, dtype=np.float64)
    ones = np.ones(len(r))
    return OffPolicyEstimate(
        policy, ratio_interval(users, w * r, ones), ratio_interval(users, w * r, w),
        ratio_interval(users, dr_terms(propensity, reward, target, direct, rhat_served), ones),
        float(np.mean(np.asarray(target) > 0)) if len(r) else float("nan"))


def dr_terms(propensity: FloatArray, reward: FloatArray, target: FloatArray,
             direct: FloatArray, rhat_served: FloatArray) -> FloatArray:
    """Each decision's doubly robust term (their mean is the DR estimate): the reward model's
    expectation under the target policy, corrected by the weighted residual of what was
    served."""
    w = np.asarray(target) / np.asarray(propensity)
    terms: FloatArray = np.asarray(direct) + w * (
        np.asarray(reward, dtype=np.float64) - np.asarray(rhat_served))
    return terms


def off_policy_report(events: list[Event], catalog: Catalog, decisions: list[dict[str, Any]],
                      policies: dict[str, Ranker], secret: bytes, lateness_s: float,
                      since: float, until: float, rank_limit: int = 500) -> OffPolicyReport:
    """Estimate each of `policies` (name → ranker, under each placement's policy, scoring
    the replayed rows with the trait columns it reads) on the
    logged decisions of [since, until) (every arm but the holdout's: a decision in an
    experiment's arm was drawn with its logged propensity too); `events` must reach back far
    enough to build the profiles (the training window does). The report's `comparison` is
    the first policy − the second."""
    logged = [d for d in decisions if d["arm"] != HOLDOUT_ARM and since <= d["decided_at"] < until
              and d["placement"] in catalog.placements]
    found = logged_outcomes(events, catalog, logged, policies, secret, lateness_s, rank_limit)
    p, r, rhat = np.array(found.propensity), np.array(found.reward), np.array(found.rhat_served)
    estimates = [estimate(name, found.users, p, r, np.array(found.target[name]),
                          np.array(found.direct[name]), rhat) for name in policies]
    terms = [dr_terms(p, r, np.array(found.target[name]), np.array(found.direct[name]), rhat)
             for name in list(policies)[:2]]
    comparison = (paired_difference(found.users, terms[0], terms[1])
                  if len(terms) == 2 and len(found.users) else None)
    return OffPolicyReport(len(logged), len(found.users),
                           ratio_interval(found.users, r, np.ones(len(r))), estimates,
                           comparison)


def logged_outcomes(events: list[Event], catalog: Catalog, logged: list[dict[str, Any]],
                    policies: dict[str, Ranker], secret: bytes, lateness_s: float,
                    rank_limit: int = 500) -> Outcomes:
    """Replay `events` and, at each session start that has `logged` decisions (by the
    user's tag and the second), their rewards and each policy's probabilities."""
    wanted: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for line in logged:
        wanted[(line["tag"], line["decided_at"])].append(line)
    engaged, next_start = engaged_after(events), next_session_starts(events)
    replay, tags, out = Replay(catalog, lateness_s), UserTags(secret), Outcomes()
    for event in events:
        profile = replay.apply(event)
        if not event.session_start or not wanted:
            continue
        tag = tags(replay.user_of(event))
        for line in wanted.pop((tag, int(profile.updated_at)), []):
            _evaluate(replay, profile, event, line, policies, engaged,
                      next_start[id(event)], rank_limit, out)
    return out


def _evaluate(replay: Replay, profile: Profile, event: Event, line: dict[str, Any],
              policies: dict[str, Ranker], engaged: Engaged, next_start: float,
              rank_limit: int, out: Outcomes) -> None:
    """Add one logged decision: its reward, and each policy's probabilities of it."""
    placement, served = line["placement"], line["variant"]
    at = profile.updated_at
    candidates, x, eligible = moment_rows(replay, profile, placement, at, rank_limit)
    index = candidates.variants.index(served) if served in candidates.variants else None
    rhat = x[:, COLUMN["pop_ctr"]]
    out.users.append(line["tag"])
    out.propensity.append(float(line["propensity"]))
    out.reward.append(_clicked(engaged, event, placement, served, next_start))
    out.rhat_served.append(0.0 if index is None else float(rhat[index]))
    for name, ranker in policies.items():
        scores = ranker.score(ranker_rows(x, profile, ranker.traits))
        probabilities = first_slot_probabilities(candidates, x, scores, eligible)
        out.target[name].append(0.0 if index is None else float(probabilities[index]))
        out.direct[name].append(float(probabilities @ rhat))


def _clicked(engaged: Engaged, event: Event, placement: str, variant: str,
             next_start: float) -> float:
    """1.0 when the user clicked (or converted on) `variant` in `placement` after the
    session start and before the next one (at most SESSION_WINDOW_S later)."""
    who = event.user_id or event.anonymous_id or ""
    found = engaged.get((who, placement))
    if found is None:
        return 0.0
    times, items = found
    at = event.timestamp.timestamp()
    end = min(next_start, at + SESSION_WINDOW_S)
    window = items[bisect.bisect_right(times, at):bisect.bisect_left(times, end)]
    return float(any(v == variant and label > 0 for v, label in window))


class UserTags:
    """User ids → keyed hashes (the decision log's `tag`), each computed once."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._of: dict[str, str] = {}

    def __call__(self, user: str) -> str:
        if user not in self._of:
            self._of[user] = user_tag(self._secret, user)
        return self._of[user]
