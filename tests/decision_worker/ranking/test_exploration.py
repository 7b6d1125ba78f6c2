"""Exploration on the first slot: sticky draws, exact propensities, the configured rate."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from decision_worker.ranking.decide import decide, first_slot_probabilities
from decision_worker.ranking.exploration import draw, first_slot, probabilities
from decision_worker.ranking.features import COLUMN, placement_matrix, user_batch
from decision_worker.ranking.popularity import Popularity
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.ranker import BaselineRanker
from decision_worker.ranking.trending import event_day
from decision_worker.ranking.why_record import WhyRecord, decode_whys, encode_whys
from tests.fuzzing import fuzz_share

from .test_placement_policy import AT, VARIANTS, catalog

ROW = {"slots": 3, "exclude": [], "max_views": 0, "include_default": False}
# every variant viewed 500 times, v1 clicked most: v1 is the greedy choice; v11 never seen
COUNTS = {f"{kind}|row/{v}": count for v in VARIANTS[:-1]
          for kind, count in (("view", 500), ("click", 90 if v == "v1" else 10))}


def popularity() -> Popularity:
    """The counts above, overall and trending yesterday."""
    counts = Popularity({k: float(c) for k, c in COUNTS.items()})
    counts.trends.set_day(event_day(AT.timestamp()) - 1, COUNTS)
    return counts


def decided(policy: dict[str, object], tags: list[str], at: float = AT.timestamp()
            ) -> list[WhyRecord]:
    cat = catalog(policy)
    users = user_batch([Profile() for _ in tags], [at] * len(tags), cat)
    out = decide(users, cat, popularity(), BaselineRanker(), 3, 0.0, tags)
    for per_placement in out:
        assert per_placement["row"].record.ranked[0] == per_placement["row"].why.variant
    return [per_placement["row"].why for per_placement in out]


def test_without_exploration_the_greedy_choice_has_propensity_one() -> None:
    whys = decided({**ROW, "exploration": 0.0}, [f"user-{i}" for i in range(50)])
    assert {(w.variant, w.propensity, w.explored) for w in whys} == {("v1", 1.0, False)}
    # no policy key at all (a manifest from before exploration existed): the same
    assert {w.propensity for w in decided(ROW, ["a", "b"])} == {1.0}


def test_the_draw_is_sticky_per_user_placement_and_moment() -> None:
    policy = {**ROW, "exploration": 0.5, "explore_new": 0.5}
    tags = [f"user-{i}" for i in range(200)]
    first, again = decided(policy, tags), decided(policy, tags)
    assert first == again  # same inputs, same variant, propensity and row
    later = decided(policy, tags, AT.timestamp() + 3600)  # the next decision moment
    assert sum(a.variant != b.variant for a, b in zip(first, later, strict=True)) > 20
    assert draw("t", "row", 1) == draw("t", "row", 1) != draw("t", "row", 2)
    assert draw("t", "row", 1) != draw("t", "hero", 1) != draw("u", "row", 1)


def test_explored_share_and_served_frequencies_match_the_policy() -> None:
    epsilon, new_share, n = 0.2, 0.5, 20_000
    whys = decided({**ROW, "exploration": epsilon, "explore_new": new_share},
                   [f"user-{i}" for i in range(n)])
    explored = sum(w.explored for w in whys) / n
    assert abs(explored - epsilon) < 4.5 * math.sqrt(epsilon * (1 - epsilon) / n)
    # every variant is served as often as its propensity says; the new one (v11, never
    # viewed) gets half of the exploration draws: 0.2 × (0.5 + 0.5 / 12)
    expected = {w.variant: w.propensity for w in whys}
    assert math.isclose(expected["v11"], epsilon * (new_share + (1 - new_share) / 12))
    assert math.isclose(expected["v1"], 1 - epsilon + epsilon * (1 - new_share) / 12)
    assert math.isclose(sum(expected.values()), 1.0)
    for variant, p in expected.items():
        share = sum(w.variant == variant for w in whys) / n
        assert abs(share - p) < 4.5 * math.sqrt(p * (1 - p) / n), (variant, share, p)


def test_the_why_record_carries_the_first_variants_row_and_round_trips() -> None:
    policy = {**ROW, "exploration": 0.5}
    cat = catalog(policy)
    users = user_batch([Profile()], [AT.timestamp()], cat)
    why = decide(users, cat, popularity(), BaselineRanker(), 3, 0.0,
                 ["someone"])[0]["row"].why
    x, eligible = placement_matrix(users, cat.placements["row"], popularity())
    i = cat.placements["row"].variants.index(why.variant)
    assert why.features == tuple(x[0, i].tolist())
    scores = BaselineRanker().score(x[0])
    assert first_slot_probabilities(cat.placements["row"], x[0], scores, eligible[0])[i] \
        == why.propensity  # the evaluation's probability is the worker's, exactly
    decided_at, back = decode_whys(encode_whys(1_795_000_000, {"row": why, "other": why}))
    assert decided_at == 1_795_000_000 and set(back) == {"row", "other"}
    assert (back["row"].variant, back["row"].propensity, back["row"].explored) == (
        why.variant, why.propensity, why.explored)
    assert np.allclose(back["row"].features, why.features, rtol=1e-6)  # float32
    assert back["row"].features[COLUMN["is_default"]] == why.features[COLUMN["is_default"]]


@fuzz_share(0.1)
@given(size=st.integers(1, 30), data=st.data(),
       epsilon=st.floats(0.0, 0.5), new_share=st.floats(0.0, 1.0),
       uniforms=st.tuples(*[st.floats(0.0, 1.0, exclude_max=True)] * 3))
def test_the_propensity_is_exactly_the_policys_probability(size, data, epsilon, new_share,
                                                           uniforms) -> None:
    eligible = np.array(data.draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    new = np.array(data.draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    greedy = data.draw(st.integers(0, size - 1))
    eligible[greedy] = True  # the greedy choice is always eligible (candidates.py)
    chosen = first_slot(greedy, eligible, new, epsilon, new_share, uniforms)
    p = probabilities(greedy, eligible, new, epsilon, new_share)
    assert eligible[chosen.index] and chosen.propensity == p[chosen.index] > 0
    assert math.isclose(p.sum(), 1.0) and (p[~eligible] == 0).all()
    assert chosen.explored == (uniforms[0] < epsilon)
    if not chosen.explored:
        assert chosen.index == greedy
