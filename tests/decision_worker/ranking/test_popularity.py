"""Popularity: what is counted, and how thin evidence is smoothed."""

from __future__ import annotations

import numpy as np

from decision_worker.ranking.popularity import engagement_counts, smooth


def test_only_views_and_clicks_of_published_variants_are_counted() -> None:
    published = {"hero/a"}
    segments = ("mobile", "email", "es")
    assert engagement_counts("view", "hero/a", segments, published) == (
        ("view", "hero/a", None), ("view", "hero/a", "mobile"))
    # a click also counts in its source's and language's share of trending clicks
    assert engagement_counts("click", "hero/a", segments, published) == (
        ("click", "hero/a", None), ("click", "hero/a", "mobile"), ("click", "hero/a", "s:email"),
        ("click", "hero/a", "l:es"))
    assert engagement_counts("click", "hero/a", ("mobile", "direct", None), published) == (
        ("click", "hero/a", None), ("click", "hero/a", "mobile"), ("click", "hero/a", "s:direct"))
    assert engagement_counts("click", "hero/unknown", segments, published) == ()
    assert engagement_counts("conversion", "hero/a", segments, published) == ()


def test_thin_evidence_is_pulled_towards_the_placement_rate() -> None:
    views, clicks = np.array([2.0, 10_000.0]), np.array([1.0, 900.0])
    result = smooth(views, clicks, np.zeros((4, 2)), np.zeros((4, 2)))
    placement = (901 / 10_022)  # its clicks and views, with the placement prior's (1, 20)
    assert abs(result.ctr[0] - placement) < 0.02  # 1 of 2 reads as about 11 %, not 50 %
    assert result.ctr[1] == np.float64(result.ctr[1]) and 0.089 < result.ctr[1] < 0.091
    # no evidence on a device: the device rate is the variant's overall rate
    assert np.allclose(result.device_ctr[:, 0], result.ctr[0])
