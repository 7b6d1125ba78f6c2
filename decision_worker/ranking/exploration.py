"""Exploration on top of the ranker: epsilon-greedy on the first slot, with a floor for new
variants, sticky per user and decision, and the exact probability of what was served.

A variant the ranker never puts first is never shown and never gains evidence, and a log
of greedy choices cannot tell how another policy would have done. So, with probability
`epsilon` (the placement policy's `exploration`), the first slot is drawn at random instead
of being the ranker's greedy choice: with probability `new_share` (`explore_new`) among the
eligible *new* variants (fewer than `NEW_VIEWS` views by anyone: the `pop_log_views`
feature), when there are any, else uniformly among every eligible variant (the greedy
choice included, and the default when the user may be shown it). For an eligible variant
v, with N eligible variants of which N_new are new:

    P(first = v) = (1 - epsilon) [v = greedy] + epsilon q(v)
    q(v) = new_share [v new] / N_new + (1 - new_share) / N      (N_new > 0)
    q(v) = 1 / N                                                 (N_new = 0)

That probability of the variant actually put first (its propensity) is recorded with the
decision, so training can weight by it and evaluation can estimate another policy's
click-through off-policy (learning/off_policy.py).

The draw is sticky: three uniforms from BLAKE2b over (user tag, placement, decided_at), never
Python's `random`. A redelivered event, the offline replay of the log and an operator
re-reading the decision all get the same draw; the user's next decision moment draws again.
Exploration happens among what the worker ranks: for a placement larger than
`EDGEPICK_RANK_LIMIT`, the candidates retrieval kept (retrieval.py).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from decision_worker.ranking.arrays import BoolArray, FloatArray

NEW_VIEWS = 100  # a variant viewed fewer times than this (by anyone) is new
NEW_LOG_VIEWS = math.log1p(NEW_VIEWS)  # the same bound on the pop_log_views feature
_PERSON = b"ep-explore-1"  # versions the draw: a new rule never reshuffles old decisions
_SCALE = 2.0 ** -64

Uniforms = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class FirstSlot:
    index: int  # into the candidates ranked
    propensity: float  # P(this variant is first) under the policy
    explored: bool  # the draw took the exploration branch (it may still hit the greedy one)


def draw(tag: str, placement: str, decided_at: int) -> Uniforms:
    """Three uniforms in [0, 1) for one user, placement and decision moment."""
    digest = hashlib.blake2b(f"{tag}|{placement}|{decided_at}".encode(), digest_size=24,
                             person=_PERSON).digest()
    return (int.from_bytes(digest[0:8], "big") * _SCALE,
            int.from_bytes(digest[8:16], "big") * _SCALE,
            int.from_bytes(digest[16:24], "big") * _SCALE)


def first_slot(greedy: int, eligible: BoolArray, new: BoolArray, epsilon: float,
               new_share: float, uniforms: Uniforms) -> FirstSlot:
    """The variant put first, and its propensity (the formula above)."""
    fresh = eligible & new
    return first_slot_counted(greedy, eligible, fresh, int(np.count_nonzero(eligible)),
                              int(np.count_nonzero(fresh)), epsilon, new_share, uniforms)


def first_slot_counted(greedy: int, eligible: BoolArray, fresh: BoolArray, n_all: int,
                       n_new: int, epsilon: float, new_share: float,
                       uniforms: Uniforms) -> FirstSlot:
    """`first_slot` with the eligible new variants (`fresh`) and both counts given: what a
    batch computes for all its users at once."""
    if epsilon <= 0.0:
        return FirstSlot(greedy, 1.0, False)
    explore, pool, pick = uniforms
    if explore >= epsilon:
        chosen = greedy
    else:
        indices = np.flatnonzero(fresh if n_new and pool < new_share else eligible)
        chosen = int(indices[int(pick * len(indices))])
    q = (new_share * bool(fresh[chosen]) / n_new + (1.0 - new_share) / n_all) if n_new \
        else 1.0 / n_all
    return FirstSlot(chosen, (1.0 - epsilon) * (chosen == greedy) + epsilon * q,
                     explore < epsilon)


def probabilities(greedy: int, eligible: BoolArray, new: BoolArray, epsilon: float,
                  new_share: float) -> FloatArray:
    """P(first = v) for every candidate v (0 for the ineligible): the same formula, for the
    policy an off-policy evaluation scores."""
    fresh = eligible & new
    n_all, n_new = int(np.count_nonzero(eligible)), int(np.count_nonzero(fresh))
    if n_new:
        q = new_share * fresh / n_new + (1.0 - new_share) * eligible / n_all
    else:
        q = eligible / n_all
    p: FloatArray = epsilon * np.asarray(q, dtype=np.float64)
    p[greedy] += 1.0 - epsilon
    return p
