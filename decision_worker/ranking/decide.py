"""Decisions for a batch of users: candidates → features → one scoring call → top few.

Each placement's policy (placement_policy.py) says how many variants the list holds,
whether the default must be among them (appended last when the ranker left it out; it
need not be, since the edge falls back to the default by itself) and how often the first
slot explores (exploration.py: drawn from the user's tag, the placement and the decision's
time, so the offline replay, which calls `rank` too, draws the same). Ties go to the default
(with no evidence either way, the editor's choice wins). A user in the persistent holdout
gets the default alone, with arm `holdout`, whatever the ranker says.

Each decision comes with its why-record (why_record.py): the first variant, its propensity,
whether it was explored, and its feature row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from decision_worker.ranking.arrays import BoolArray, FloatArray
from decision_worker.ranking.candidates import Catalog, PlacementCandidates
from decision_worker.ranking.embeddings import user_vector
from decision_worker.ranking.experiment import PERSONALIZATION, personalization_arm
from decision_worker.ranking.exploration import (
    NEW_LOG_VIEWS,
    FirstSlot,
    Uniforms,
    draw,
    first_slot_counted,
    probabilities,
)
from decision_worker.ranking.features import (
    COLUMN,
    UserBatch,
    one_user,
    placement_matrix,
    schedule_clock,
)
from decision_worker.ranking.popularity import Popularity
from decision_worker.ranking.ranker import Ranker
from decision_worker.ranking.retrieval import retrieve, variant_index
from decision_worker.ranking.trending import event_day
from decision_worker.ranking.why_record import WhyRecord
from edge_functions.bucketing import in_holdout_bucket
from edge_functions.decision_record import HOLDOUT_ARM, DecisionRecord

TREATMENT_ARM = "treatment"
_TIE_BREAK = 1e-9  # below any real score difference: only decides exact ties


@dataclass(frozen=True, slots=True)
class Shadow:
    """What a model in shadow would have served instead (logged, never stored or served)."""

    model: str
    ranked: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decided:
    record: DecisionRecord  # what the edge reads
    why: WhyRecord  # what the first slot was chosen from
    shadow: Shadow | None = None


@dataclass(frozen=True, slots=True)
class Ranked:
    ranked: list[str]
    why: WhyRecord


def decide(users: UserBatch, catalog: Catalog, popularity: Popularity, ranker: Ranker,
           ranked_size: int, holdout_share: float, tags: Sequence[str],
           observe: Callable[[int, str, FloatArray], None] | None = None,
           rank_limit: int = 500, scorer: Executor | None = None,
           only: Collection[str] | None = None) -> list[dict[str, Decided]]:
    """One {placement: decision} per user of the batch (`tags`: the users' key tags, which
    seed the exploration draws), for every placement of the catalog (or those in `only`).
    A placement with more than `rank_limit` variants is narrowed per user by retrieval
    first (retrieval.py). `observe(user index, placement, rows)` sees every feature matrix
    scored (skew tests, feature logging). With a `scorer` (one thread: the worker's), each
    placement's rows are scored there while the next placement's rows are built; the
    decisions are the same."""
    n = len(users.profiles)
    decided_at = [int(t) for t in users.as_of]
    held = [p.holdout_hash is not None and in_holdout_bucket(p.holdout_hash, holdout_share)
            for p in users.profiles]
    pending: list[tuple[str, Callable[[], list[Ranked | None]]]] = []
    for placement, candidates in catalog.placements.items():
        if only is not None and placement not in only:
            continue
        draws = [draw(tags[u], placement, decided_at[u]) for u in range(n)] \
            if candidates.policy.exploration > 0 else [_NO_DRAW] * n
        if len(candidates.variants) > rank_limit:
            picks = _two_stage(users, catalog, candidates, popularity, ranker, ranked_size,
                               rank_limit, held, observe, draws)
            pending.append((placement, _ready(picks)))
        else:
            pending.append((placement, _scored(users, candidates, popularity, ranker,
                                               ranked_size, held, observe, draws, scorer)))
    compared = [PERSONALIZATION if personalization_arm(p.holdout_hash, holdout_share) else ""
                for p in users.profiles]
    out: list[dict[str, Decided]] = [{} for _ in range(n)]
    for placement, ranked in pending:
        candidates = catalog.placements[placement]
        default = candidates.variants[candidates.default_index]
        for u, pick in enumerate(ranked()):
            if pick is None:  # the holdout: the default by rule, nothing scored
                out[u][placement] = Decided(
                    DecisionRecord((default,), ranker.version, HOLDOUT_ARM, decided_at[u],
                                   compared[u]),
                    WhyRecord(default, 1.0, False, ()))
            else:
                out[u][placement] = Decided(DecisionRecord(tuple(pick.ranked), ranker.version,
                                                           TREATMENT_ARM, decided_at[u],
                                                           compared[u]),
                                            pick.why)
    return out


def _ready(picks: list[Ranked | None]) -> Callable[[], list[Ranked | None]]:
    return lambda: picks


def _scored(users: UserBatch, candidates: PlacementCandidates, popularity: Popularity,
            ranker: Ranker, ranked_size: int, held: list[bool],
            observe: Callable[[int, str, FloatArray], None] | None, draws: list[Uniforms],
            scorer: Executor | None) -> Callable[[], list[Ranked | None]]:
    """One placement's rows, scored now (or on `scorer`); returns what ranks them."""
    n, v = len(users.profiles), len(candidates.variants)
    x, eligible = placement_matrix(users, candidates, popularity)
    if observe is not None:
        for u in range(n):
            observe(u, candidates.placement, x[u])
    rows = x.reshape(n * v, -1)
    if scorer is None:
        scores = ranker.score(rows)
        return lambda: rank_all(candidates, x, scores.reshape(n, v), eligible, ranked_size,
                                draws, held)
    future = scorer.submit(ranker.score, rows)
    return lambda: rank_all(candidates, x, future.result().reshape(n, v), eligible,
                            ranked_size, draws, held)


def rank(candidates: PlacementCandidates, rows: FloatArray, scores: FloatArray,
         eligible: BoolArray, ranked_size: int, uniforms: Uniforms) -> Ranked:
    """One user's ranked list and why-record (`rank_all` for a batch of one)."""
    ranked = rank_all(candidates, rows[None], scores[None], eligible[None], ranked_size,
                      [uniforms], [False])[0]
    assert ranked is not None
    return ranked


def rank_all(candidates: PlacementCandidates, x: FloatArray, scores: FloatArray,
             eligible: BoolArray, ranked_size: int, draws: Sequence[Uniforms],
             held: Sequence[bool]) -> list[Ranked | None]:
    """For each user (x: (B, V, F) rows, scores and eligibility (B, V)), the top of the
    eligible variants, as many as the placement's policy asks for, the first slot explored
    as the policy says; None for the `held` (worker and offline replay both rank here).
    Sorting and counting happen for the whole batch at once."""
    policy = candidates.policy
    slots = policy.slots_or(ranked_size)
    variants, default = candidates.variants, candidates.variants[candidates.default_index]
    order = _greedy_order(candidates, scores, eligible)
    greedy, tops = order[:, 0].tolist(), order[:, :slots].tolist()
    exploring = policy.exploration > 0
    if exploring:
        fresh = eligible & new_variants(x)
        n_all, n_new = eligible.sum(axis=1).tolist(), fresh.sum(axis=1).tolist()
    out: list[Ranked | None] = []
    for u, top in enumerate(tops):
        if held[u]:
            out.append(None)
            continue
        first = first_slot_counted(greedy[u], eligible[u], fresh[u], n_all[u], n_new[u],
                                   policy.exploration, policy.explore_new, draws[u]) \
            if exploring else FirstSlot(greedy[u], 1.0, False)
        if first.index != greedy[u]:
            top = [first.index, *(i for i in top if i != first.index)][:slots]
        ranked = [variants[i] for i in top if eligible[u, i]]
        if policy.include_default and default not in ranked:
            ranked = ranked[:slots - 1] + [default] if slots > 1 else ranked
        out.append(Ranked(ranked or [default], WhyRecord(
            variants[first.index], first.propensity, first.explored,
            tuple(x[u, first.index].tolist()))))
    return out


def new_variants(rows: FloatArray) -> BoolArray:
    """Which candidates are new (exploration.py): fewer than NEW_VIEWS views by anyone
    (rows (V, F) or (B, V, F))."""
    new: BoolArray = rows[..., _POP_LOG_VIEWS] < NEW_LOG_VIEWS
    return new


def first_slot_probabilities(candidates: PlacementCandidates, rows: FloatArray,
                             scores: FloatArray, eligible: BoolArray) -> FloatArray:
    """P(first = v) for every candidate under the placement's policy with these scores:
    what an off-policy evaluation weighs a logged decision by."""
    policy = candidates.policy
    greedy = int(_greedy_order(candidates, scores, eligible)[0])
    return probabilities(greedy, eligible, new_variants(rows), policy.exploration,
                         policy.explore_new)


def _greedy_order(candidates: PlacementCandidates, scores: FloatArray,
                  eligible: BoolArray) -> np.ndarray:
    """Candidates best first, per user for (B, V) inputs (the eligible ones first: every
    user has one, candidates.py; ties to the default)."""
    scores = np.where(eligible, scores + _TIE_BREAK * candidates.is_default, -np.inf)
    return np.argsort(-scores, axis=-1, kind="stable")


_NO_DRAW: Uniforms = (1.0, 1.0, 1.0)  # exploration 0: no hash computed (nor needed)
_POP_LOG_VIEWS = COLUMN["pop_log_views"]


def _two_stage(users: UserBatch, catalog: Catalog, candidates: PlacementCandidates,
               popularity: Popularity, ranker: Ranker, ranked_size: int, rank_limit: int,
               held: list[bool], observe: Callable[[int, str, FloatArray], None] | None,
               draws: list[Uniforms]) -> list[Ranked | None]:
    full = popularity.for_placement(candidates)
    eligible = candidates.eligible(schedule_clock(users), users.languages,
                                   candidates.excluded(users.profiles))
    index = variant_index(catalog, candidates.placement)
    out: list[Ranked | None] = []
    for u, profile in enumerate(users.profiles):
        if held[u]:
            out.append(None)
            continue
        at = float(users.as_of[u])
        picked = retrieve(index, user_vector(profile, at), full, eligible[u], candidates,
                          rank_limit, event_day(at))
        subset = candidates.subset(picked)
        x, sub_eligible = placement_matrix(one_user(users, u), subset, full.take(picked))
        if observe is not None:
            observe(u, candidates.placement, x[0])
        out.append(rank(subset, x[0], ranker.score(x[0]), sub_eligible[0], ranked_size,
                        draws[u]))
    return out
