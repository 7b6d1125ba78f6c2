"""Decision moments as training groups: what the user engaged with after a session start.

Logged slates (examples.py) say which of the *shown* variants were clicked. That is not all
a site learns from: at every session start the worker decides every placement, and what
the user then clicks in that placement during the session (until their next session start,
at most `SESSION_WINDOW_S`) is what the decision should have put first, whether edgepick
showed it or the user found it by themselves. Each such moment with a click becomes a group:
the clicked variants (label 1, 2 when converted) among the variants shown in the session and
not clicked and a sample of the other candidates the worker would have ranked then (label
0), with the worker's features of that moment. A
placement with one slot learns from these as well as a row does.

Negatives are a seeded sample (`NEGATIVES`) of the eligible candidates (after retrieval for
a large placement), so the group costs a few dozen rows, not the whole catalog; the
evaluation window keeps every candidate (`keep`) to rank them all.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from decision_worker.ingest.events import Event
from decision_worker.learning.replay import Replay
from decision_worker.ranking.arrays import BoolArray, FloatArray, IntArray
from decision_worker.ranking.embeddings import user_vector
from decision_worker.ranking.profile import Profile, language_of
from decision_worker.ranking.retrieval import retrieve, variant_index
from decision_worker.ranking.trending import event_day

SESSION_WINDOW_S = 6 * 3600
NEGATIVES = 40
ORGANIC_POSITION = 15  # no slot was logged: one position-bias factor for all such rows
LABEL = {"view": 0, "click": 1, "conversion": 2}

Engaged = dict[tuple[str, str], tuple[list[float], list[tuple[str, int]]]]


def engaged_after(events: list[Event], users: Collection[str] | None = None) -> Engaged:
    """(user, placement) → (sorted times, (variant, label) at each), for every view, click
    and conversion: what a session start is labelled with (a variant shown and not
    clicked is a negative the user really passed over). Only `users`' when given (those
    with a session start: a log without any needs none)."""
    found: dict[tuple[str, str], list[tuple[float, str, int]]] = defaultdict(list)
    if users is not None and not users:
        return {}
    for event in events:
        e = event.engagement
        if e is not None and e.kind in LABEL:
            who = event.user_id or event.anonymous_id or ""
            if users is None or who in users:
                found[(who, e.placement)].append((event.timestamp.timestamp(), e.variant,
                                                  LABEL[e.kind]))
    out: Engaged = {}
    for key, items in found.items():
        items.sort()
        out[key] = ([t for t, _, _ in items], [(v, label) for _, v, label in items])
    return out


def next_session_starts(events: list[Event]) -> dict[int, float]:
    """id(session start event) → when that user's next session starts (inf: none)."""
    by_user: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.session_start:
            by_user[event.user_id or event.anonymous_id or ""].append(event)
    out: dict[int, float] = {}
    for starts in by_user.values():
        starts.sort(key=lambda e: e.timestamp)
        for this, following in zip(starts, starts[1:] + [None], strict=True):
            out[id(this)] = following.timestamp.timestamp() if following else float("inf")
    return out


@dataclass
class SessionGroup:
    placement: str
    labels: list[int]
    variants: list[str]
    wanted: IntArray  # the candidates whose rows are built (sorted, with the default)
    picked: IntArray  # positions in `wanted` of the group's rows, as `variants`
    pool: IntArray | None  # positions in `wanted` of every candidate ranked (`keep`)
    pool_variants: list[str]  # their ids

    def rows(self, x: FloatArray, eligible: BoolArray
             ) -> tuple[FloatArray, tuple[FloatArray, list[str]] | None]:
        """The group's rows and, with `keep`, every eligible candidate's row and id, from
        the rows of `wanted` and their eligibility (Replay.features, feature_batch.py)."""
        if self.pool is None:
            return x[self.picked], None
        ok = eligible[self.pool]
        return x[self.picked], (x[self.pool[ok]],
                                [v for v, e in zip(self.pool_variants, ok, strict=True) if e])


def session_groups(replay: Replay, event: Event, profile: Profile, engaged: Engaged,
                   ends: float, rank_limit: int, keep: bool) -> list[SessionGroup]:
    """The groups of one session start (one per placement clicked in the session)."""
    who = event.user_id or event.anonymous_id or ""
    at = event.timestamp.timestamp()
    end = min(ends, at + SESSION_WINDOW_S)
    out = []
    for placement in replay.catalog.placements:
        found = engaged.get((who, placement))
        if found is None:
            continue
        times, items = found
        labels: dict[str, int] = {}
        for variant, label in items[bisect.bisect_right(times, at):bisect.bisect_left(times,
                                                                                       end)]:
            labels[variant] = max(label, labels.get(variant, 0))
        if any(labels.values()):
            group = _group(replay, profile, placement, at, labels, rank_limit, keep,
                           _seed(who, at))
            if group is not None:
                out.append(group)
    return out


def _group(replay: Replay, profile: Profile, placement: str, at: float,
           labels: dict[str, int], rank_limit: int, keep: bool,
           seed: int) -> SessionGroup | None:
    candidates = replay.catalog.placements[placement]
    pool = candidate_pool(replay, profile, placement, at, rank_limit)
    # Only what the worker could have ranked: a click on something retrieval left out
    # would teach the ranker what retrieval misses, not what to put first.
    in_pool = set(pool.tolist())
    index = {v: i for v in labels
             if (i := candidates.key_index.get(f"{placement}/{v}", -1)) in in_pool}
    positives = [i for v, i in index.items() if labels[v] > 0]
    if not positives:
        return None
    shown = [i for v, i in index.items() if labels[v] == 0]
    others = np.setdiff1d(pool, positives + shown)
    rng = np.random.default_rng(seed)
    negatives = np.concatenate([np.array(shown, dtype=np.int64), rng.choice(
        others, size=min(NEGATIVES, len(others)), replace=False)]).astype(np.int64)
    wanted = np.array(sorted(set(positives) | set(negatives.tolist()) | (
        set(pool.tolist()) if keep else set()) | {candidates.default_index}), dtype=np.int64)
    picked = positives + [int(i) for i in negatives]
    variants = [candidates.variants[i] for i in picked]
    pool_variants = [candidates.variants[i] for i in pool] if keep else []
    return SessionGroup(placement, [labels.get(v, 0) for v in variants], variants, wanted,
                        np.searchsorted(wanted, picked),
                        np.searchsorted(wanted, pool) if keep else None, pool_variants)


def candidate_pool(replay: Replay, profile: Profile, placement: str, at: float,
                   rank_limit: int) -> IntArray:
    """Indices of the eligible variants the worker ranks at that moment (after retrieval,
    for a placement larger than `rank_limit`)."""
    candidates = replay.catalog.placements[placement]
    eligible = candidates.eligible(np.array([at]), [language_of(profile)],
                                   candidates.excluded([profile]))[0]
    if len(candidates.variants) <= rank_limit:
        return np.flatnonzero(eligible)
    picked = retrieve(variant_index(replay.catalog, placement), user_vector(profile, at),
                      replay.popularity(at).for_placement(candidates), eligible, candidates,
                      rank_limit, event_day(at))
    kept: IntArray = picked[eligible[picked]]
    return kept


def _seed(who: str, at: float) -> int:
    digest = hashlib.blake2b(f"{who}|{at}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def would_rank(replay: Replay, profile: Profile, placement: str, at: float,
               rank_limit: int) -> IntArray:
    """Every candidate the worker would rank at that moment (after retrieval, for a
    placement larger than `rank_limit`), with the default; the eligible ones among them
    are kept."""
    candidates = replay.catalog.placements[placement]
    if len(candidates.variants) <= rank_limit:  # eligibility comes with the rows
        return np.arange(len(candidates.variants), dtype=np.int64)
    return np.union1d(candidate_pool(replay, profile, placement, at, rank_limit),
                      [candidates.default_index]).astype(np.int64)
