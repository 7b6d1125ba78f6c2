"""Trending counts: exact decayed sums whatever the order, the same from added counts
(the replay) and from replaced days (the worker's copy of Redis)."""

from __future__ import annotations

import random

import numpy as np

from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.context import DEVICES
from decision_worker.ranking.trending import (
    HALF_LIVES_DAYS,
    HORIZON_DAYS,
    TrendCounts,
    decay_weights,
)

CATALOG = Catalog.from_document({
    "format": 1, "rev": 1, "placements": {"row": {
        "default": "a", "variants": {v: {"url": f"https://cdn.test/content/row/variant-{v}.0123456789abcdef.json"}
                                     for v in ("a", "b", "c")}}}})
ROW = CATALOG.placements["row"]


def test_weights_halve_per_half_life_in_steps_of_1_256_and_end_at_the_horizon() -> None:
    w = decay_weights(np.array([0, 1, 7, 30, -1, HORIZON_DAYS]))
    assert w.shape == (len(HALF_LIVES_DAYS), 6)
    assert (w[:, 0] == 1).all() and (w[:, 4:] == 0).all()  # future and too old: nothing
    assert w[0, 1] == 0.5 and w[1, 2] == 0.5 and w[2, 3] == 0.5
    assert (w * 256 == np.round(w * 256)).all()


def test_added_and_replaced_days_give_the_same_bits_in_any_order() -> None:
    rng = random.Random(5)
    entries = [(100 - rng.randrange(40), f"{rng.choice(['view', 'click'])}|row/"
                f"{rng.choice('abc')}" + rng.choice(["", "|mobile", "|desktop"]))
               for _ in range(3000)]
    added = TrendCounts()
    for day, field in entries:
        added.add(day, field)
    early = added.features(ROW, 100)  # read once, then more counts arrive: updated in place
    for day, field in entries[:50]:
        added.add(day, field)
    replaced = TrendCounts()
    shuffled = entries + entries[:50]
    rng.shuffle(shuffled)
    for day, field in shuffled:
        replaced.days.setdefault(day, {}).setdefault(field, 0)
        replaced.days[day][field] += 1
    days, replaced.days = replaced.days, {}
    for day in sorted(days, reverse=True):
        replaced.set_day(day, days[day])
    for a, b in ((added.features(ROW, 100), replaced.features(ROW, 100)),
                 (added.features(ROW, 90), replaced.features(ROW, 90))):
        np.testing.assert_array_equal(a.overall, b.overall)
        np.testing.assert_array_equal(a.device, b.device)
    assert not np.array_equal(early.overall, added.features(ROW, 100).overall)
    assert added.features(ROW, 100).device.shape == (len(DEVICES), 3)


def test_the_most_clicked_lately_leads_and_old_clicks_fade() -> None:
    counts = TrendCounts()
    counts.set_day(10, {"click|row/a": 50, "view|row/a": 100})  # long ago
    counts.set_day(400, {"click|row/b": 5, "view|row/b": 10})  # yesterday
    trend = counts.features(ROW, 401).overall  # rows: 1, 7, 30, 365 days, then the ctr
    assert trend[0, 1] > trend[0, 0] and trend[2, 1] > trend[2, 0]  # b trends
    assert trend[0, 2] == trend[0, 0]  # a's clicks weigh nothing at a 1-day half-life
    assert counts.drop_before(300) == [10]
    assert counts.features(ROW, 401).overall[3, 0] == counts.features(ROW, 401).overall[3, 2]
