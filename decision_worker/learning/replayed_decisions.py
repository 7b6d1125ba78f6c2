"""What the worker decided at a replayed moment: the same candidates (after retrieval for a
large placement), the same feature rows, and the same `rank` (ranking/decide.py), whose
exploration draw comes from the user's tag, the placement and the decision's second. The
feature-skew test proves the rows equal; this reproduces the served variant and its
propensity from them, for the skew test and for off-policy evaluation (off_policy.py).
"""

from __future__ import annotations

import numpy as np

from decision_worker.learning.replay import Replay
from decision_worker.learning.session_groups import candidate_pool
from decision_worker.ranking.arrays import BoolArray, FloatArray
from decision_worker.ranking.candidates import PlacementCandidates
from decision_worker.ranking.decide import Ranked, rank
from decision_worker.ranking.exploration import draw
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.ranker import Ranker
from decision_worker.ranking.trait_columns import TraitColumn, trait_matrix


def moment_rows(replay: Replay, profile: Profile, placement: str, at: float,
                rank_limit: int) -> tuple[PlacementCandidates, FloatArray, BoolArray]:
    """The candidates the worker ranked at `at`, their rows and their eligibility."""
    candidates = replay.catalog.placements[placement]
    if len(candidates.variants) <= rank_limit:
        x, eligible = replay.features(profile, placement, at)
        return candidates, x, eligible
    pool = np.union1d(candidate_pool(replay, profile, placement, at, rank_limit),
                      [candidates.default_index]).astype(np.int64)
    x, eligible = replay.features(profile, placement, at, pool)
    return candidates.subset(pool), x, eligible


def ranker_rows(x: FloatArray, profile: Profile, traits: tuple[TraitColumn, ...]
                ) -> FloatArray:
    """The base rows with the trait columns a ranker reads, the user's (as the worker's
    `user_batch` appends them)."""
    if not traits:
        return x
    return np.hstack([x, np.repeat(trait_matrix([profile.traits], traits), len(x), axis=0)])


def replayed_decision(replay: Replay, profile: Profile, placement: str, at: float, tag: str,
                      ranker: Ranker, ranked_size: int, rank_limit: int) -> Ranked:
    """The ranked list and why-record the worker wrote for `tag` at `at` (treatment arm)."""
    candidates, x, eligible = moment_rows(replay, profile, placement, at, rank_limit)
    return rank(candidates, x, ranker.score(ranker_rows(x, profile, ranker.traits)), eligible,
                ranked_size, draw(tag, placement, int(at)))
