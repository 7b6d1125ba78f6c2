"""Trending counts: exact decayed sums whatever the order, the same from added counts
(the replay) and from replaced days (the worker's copy of Redis)."""

from __future__ import annotations

import random

import numpy as np

from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.context import DEVICES, SOURCES, TREND_LANGUAGES
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
                f"{rng.choice('abc')}" + rng.choice(["", "|mobile", "|desktop", "|s:email",
                                                       "|l:es", "|l:xx"]))
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
        np.testing.assert_array_equal(a.source, b.source)
        np.testing.assert_array_equal(a.language, b.language)
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


def test_each_source_and_language_has_its_own_trend_leaning_on_the_overall_one() -> None:
    counts = TrendCounts()
    # Email readers click a, Spanish speakers c; overall, b leads.
    counts.set_day(400, {"click|row/a": 40, "click|row/a|s:email": 40,
                         "click|row/b": 100, "click|row/b|s:direct": 100,
                         "click|row/c": 30, "click|row/c|l:es": 30,
                         "click|row/a|l:xx": 999})  # not a trend language: ignored
    trend = counts.features(ROW, 400)
    email, direct = SOURCES.index("email"), SOURCES.index("direct")
    spanish, other = TREND_LANGUAGES.index("es"), len(TREND_LANGUAGES)
    assert trend.source[email].argmax() == 0 and trend.source[direct].argmax() == 1
    assert trend.language[spanish].argmax() == 2
    # no clicks in a segment, or a language without a row: the overall 30-day share
    overall = trend.overall[HALF_LIVES_DAYS.index(30)]
    np.testing.assert_allclose(trend.source[SOURCES.index("search")], overall)
    np.testing.assert_allclose(trend.language[other], overall)
    np.testing.assert_allclose(trend.language[TREND_LANGUAGES.index("de")], overall)
