"""Decayed counts: the math the profile, the features and retrieval all stand on."""

from __future__ import annotations

import itertools

import pytest

from decision_worker.ranking.counters import (
    HALF_LIVES_S,
    KINDS,
    add_to_counter,
    counter_at,
    merge_counters,
    new_counts,
)

DAY = 86_400.0
CLICK = KINDS.index("click")


def test_a_count_halves_after_each_half_life() -> None:
    counts = new_counts()
    add_to_counter(counts, 1_000_000.0, CLICK)
    now = counter_at(counts, 1_000_000.0)
    later = counter_at(counts, 1_000_000.0 + HALF_LIVES_S[0])
    assert now[CLICK] == 1.0 and later[CLICK] == pytest.approx(0.5)  # the 1-day window
    assert later[3 + CLICK] == pytest.approx(2 ** (-DAY / HALF_LIVES_S[1]))  # the 14-day one


def test_the_order_events_arrive_in_does_not_matter() -> None:
    times = [1_000_000.0 + DAY * x for x in (0.0, 2.5, 0.3, 7.0, 1.1)]
    results = []
    for order in itertools.permutations(times):
        counts = new_counts()
        for at in order:
            add_to_counter(counts, at, CLICK)
        results.append(counter_at(counts, times[3] + DAY))
    for other in results[1:]:
        assert other == pytest.approx(results[0], rel=1e-12)


def test_asking_about_the_past_never_grows_a_count() -> None:
    counts = new_counts()
    add_to_counter(counts, 2_000_000.0, CLICK)
    assert counter_at(counts, 1_000_000.0)[CLICK] == 1.0


def test_merging_is_adding() -> None:
    a, b, both = new_counts(), new_counts(), new_counts()
    for at in (1_000_000.0, 1_100_000.0):
        add_to_counter(a, at, CLICK)
        add_to_counter(both, at, CLICK)
    add_to_counter(b, 1_050_000.0, CLICK)
    add_to_counter(both, 1_050_000.0, CLICK)
    merge_counters(a, b)
    assert counter_at(a, 1_200_000.0) == pytest.approx(counter_at(both, 1_200_000.0))
