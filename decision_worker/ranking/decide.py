"""Decisions for a batch of users: candidates → features → one scoring call → top few.

Each placement's policy (placement_policy.py) says how many variants the list holds and
whether the default must be among them (appended last when the ranker left it out); it
need not be, since the edge falls back to the default by itself. Ties go to the default
(with no evidence either way, the editor's choice wins). A user in the persistent holdout
gets the default alone, with arm `holdout`, whatever the ranker says.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from decision_worker.ranking.arrays import BoolArray, FloatArray
from decision_worker.ranking.candidates import Catalog, PlacementCandidates
from decision_worker.ranking.embeddings import user_vector
from decision_worker.ranking.features import UserBatch, one_user, placement_matrix, schedule_clock
from decision_worker.ranking.popularity import Popularity
from decision_worker.ranking.ranker import Ranker
from decision_worker.ranking.retrieval import retrieve, variant_index
from decision_worker.ranking.trending import event_day
from edge_functions.bucketing import in_holdout_bucket
from edge_functions.decision_record import HOLDOUT_ARM, DecisionRecord

TREATMENT_ARM = "treatment"
_TIE_BREAK = 1e-9  # below any real score difference: only decides exact ties


def decide(users: UserBatch, catalog: Catalog, popularity: Popularity, ranker: Ranker,
           ranked_size: int, holdout_share: float,
           observe: Callable[[int, str, FloatArray], None] | None = None,
           rank_limit: int = 500) -> list[dict[str, DecisionRecord]]:
    """One {placement: record} per user of the batch, for every placement of the catalog.
    A placement with more than `rank_limit` variants is narrowed per user by retrieval
    first (retrieval.py). `observe(user index, placement, rows)` sees every feature matrix
    scored (skew tests, feature logging)."""
    n = len(users.profiles)
    decided_at = [int(t) for t in users.as_of]
    held = [p.holdout_hash is not None and in_holdout_bucket(p.holdout_hash, holdout_share)
            for p in users.profiles]
    out: list[dict[str, DecisionRecord]] = [{} for _ in range(n)]
    for placement, candidates in catalog.placements.items():
        default = candidates.variants[candidates.default_index]
        if len(candidates.variants) > rank_limit:
            ranked_lists = _two_stage(users, catalog, candidates, popularity, ranker,
                                      ranked_size, rank_limit, held, observe)
        else:
            x, eligible = placement_matrix(users, candidates, popularity)
            if observe is not None:
                for u in range(n):
                    observe(u, placement, x[u])
            v = len(candidates.variants)
            scores = ranker.score(x.reshape(n * v, -1)).reshape(n, v)
            ranked_lists = [_ranked(candidates, scores[u], eligible[u], ranked_size)
                            for u in range(n)]
        for u in range(n):
            if held[u]:
                out[u][placement] = DecisionRecord((default,), ranker.version, HOLDOUT_ARM,
                                                   decided_at[u])
            else:
                out[u][placement] = DecisionRecord(tuple(ranked_lists[u]), ranker.version,
                                                   TREATMENT_ARM, decided_at[u])
    return out


def _ranked(candidates: PlacementCandidates, scores: FloatArray, eligible: BoolArray,
            ranked_size: int) -> list[str]:
    """The top of the eligible variants, as many as the placement's policy asks for."""
    policy = candidates.policy
    slots = policy.slots_or(ranked_size)
    default = candidates.variants[candidates.default_index]
    scores = np.where(eligible, scores + _TIE_BREAK * candidates.is_default, -np.inf)
    order = np.argsort(-scores, kind="stable")[:slots]
    ranked = [candidates.variants[i] for i in order if eligible[i]]
    if policy.include_default and default not in ranked:
        ranked = ranked[:slots - 1] + [default] if slots > 1 else ranked
    return ranked or [default]


def _two_stage(users: UserBatch, catalog: Catalog, candidates: PlacementCandidates,
               popularity: Popularity, ranker: Ranker, ranked_size: int, rank_limit: int,
               held: list[bool], observe: Callable[[int, str, FloatArray], None] | None,
               ) -> list[list[str]]:
    default = candidates.variants[candidates.default_index]
    full = popularity.for_placement(candidates)
    eligible = candidates.eligible(schedule_clock(users), users.languages,
                                   candidates.excluded(users.profiles))
    index = variant_index(catalog, candidates.placement)
    out = []
    for u, profile in enumerate(users.profiles):
        if held[u]:
            out.append([default])
            continue
        at = float(users.as_of[u])
        picked = retrieve(index, user_vector(profile, at), full, eligible[u], candidates,
                          rank_limit, event_day(at))
        subset = candidates.subset(picked)
        x, sub_eligible = placement_matrix(one_user(users, u), subset, full.take(picked))
        if observe is not None:
            observe(u, candidates.placement, x[0])
        out.append(_ranked(subset, ranker.score(x[0]), sub_eligible[0], ranked_size))
    return out
