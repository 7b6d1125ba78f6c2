"""Decayed counts: per kind of engagement, over two windows, without per-event storage.

A counter keeps its values as of a reference time (`[ref, views_1d, clicks_1d,
conversions_1d, views_14d, clicks_14d, conversions_14d]`), and an event at time t adds
`2 ** (-(ref - t) / half_life)`. Adding is commutative, so the counts after a set of events
do not depend on the order they arrived in: a late event adds its (smaller) weight and
never overwrites newer state.
"""

from __future__ import annotations

HALF_LIVES_S = (86_400.0, 14 * 86_400.0)  # the "1 day" and "14 days" windows
KINDS = ("view", "click", "conversion")
SLOTS = len(KINDS) * len(HALF_LIVES_S)  # a counter: ref time + one value per kind per window
assert SLOTS == 6, "counter_at is unrolled for two windows of three kinds"

DecayedCounts = list[float]  # [ref_time, v_1d, c_1d, x_1d, v_14d, c_14d, x_14d]


def new_counts() -> DecayedCounts:
    return [0.0] * (1 + SLOTS)


def add_to_counter(counter: DecayedCounts, at: float, kind: int, weight: float = 1.0) -> None:
    """Unrolled as `counter_at` (every applied engagement adds to three counters). An event
    at or after the reference time adds `weight` itself: its weight 2 ** (-0 / h) is 1."""
    ref = counter[0]
    if at > ref:
        short = long = 0.0
        if ref:
            gap = at - ref
            short, long = 2.0 ** (-gap / HALF_LIVES_S[0]), 2.0 ** (-gap / HALF_LIVES_S[1])
        counter[1] *= short
        counter[2] *= short
        counter[3] *= short
        counter[4] *= long
        counter[5] *= long
        counter[6] *= long
        counter[0] = at
        counter[1 + kind] += weight
        counter[4 + kind] += weight
        return
    back = ref - at
    counter[1 + kind] += weight * 2.0 ** (-back / HALF_LIVES_S[0])
    counter[4 + kind] += weight * 2.0 ** (-back / HALF_LIVES_S[1])


def counter_at(counter: DecayedCounts, as_of: float) -> list[float]:
    """The six values decayed to `as_of` (never grown: as_of before ref counts as ref).

    Unrolled for two windows of three kinds: it runs for every category and variant of
    every user decided, so it is one of the worker's hottest functions."""
    gap = as_of - counter[0]
    if gap <= 0.0:
        return counter[1:]
    short, long = 2.0 ** (-gap / HALF_LIVES_S[0]), 2.0 ** (-gap / HALF_LIVES_S[1])
    return [counter[1] * short, counter[2] * short, counter[3] * short,
            counter[4] * long, counter[5] * long, counter[6] * long]


def merge_counters(into: DecayedCounts, other: DecayedCounts) -> None:
    """Sum two counters (bring both to the later reference time first)."""
    if other[0] > into[0]:
        scaled = counter_at(into, other[0])
        into[0] = other[0]
        into[1:] = scaled
        other_values = other[1:]
    else:
        other_values = counter_at(other, into[0])
    for i, value in enumerate(other_values):
        into[1 + i] += value
