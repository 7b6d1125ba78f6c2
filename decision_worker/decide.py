"""Decisions for a batch of users: candidates → features → one scoring call → top few.

Ties go to the placement's default (with no evidence either way, the editor's choice wins),
and the default is always in the list, appended last when the ranker left it out, so the
edge has a last resort inside the decision itself. A user in the persistent holdout
gets the default alone, with arm `holdout`, whatever the ranker says.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from decision_worker.candidates import Catalog, FloatArray
from decision_worker.features import UserBatch, placement_matrix
from decision_worker.popularity import Popularity
from decision_worker.ranker import Ranker
from edge_functions.decision_record import HOLDOUT_ARM, DecisionRecord

TREATMENT_ARM = "treatment"
_TIE_BREAK = 1e-9  # below any real score difference: only decides exact ties


def decide(users: UserBatch, catalog: Catalog, popularity: Popularity, ranker: Ranker,
           ranked_size: int, holdout_share: float,
           observe: Callable[[int, str, FloatArray], None] | None = None,
           ) -> list[dict[str, DecisionRecord]]:
    """One {placement: record} per user of the batch, for every placement of the catalog.
    `observe(user index, placement, rows)` sees every feature matrix scored (skew tests,
    feature logging)."""
    n = len(users.profiles)
    decided_at = [int(t) for t in users.as_of]
    held = [p.holdout_hash is not None and p.holdout_hash < holdout_share
            for p in users.profiles]
    out: list[dict[str, DecisionRecord]] = [{} for _ in range(n)]
    for placement, candidates in catalog.placements.items():
        default = candidates.variants[candidates.default_index]
        x, eligible = placement_matrix(users, candidates, popularity)
        if observe is not None:
            for u in range(n):
                observe(u, placement, x[u])
        v = len(candidates.variants)
        scores = ranker.score(x.reshape(n * v, -1)).reshape(n, v)
        scores = np.where(eligible, scores + _TIE_BREAK * candidates.is_default, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :ranked_size]
        for u in range(n):
            if held[u]:
                out[u][placement] = DecisionRecord((default,), ranker.version, HOLDOUT_ARM,
                                                   decided_at[u])
                continue
            ranked = [candidates.variants[i] for i in order[u] if eligible[u, i]]
            if default not in ranked:
                ranked = ranked[:ranked_size - 1] + [default] if ranked_size > 1 else ranked
            out[u][placement] = DecisionRecord(tuple(ranked or [default]), ranker.version,
                                               TREATMENT_ARM, decided_at[u])
    return out
