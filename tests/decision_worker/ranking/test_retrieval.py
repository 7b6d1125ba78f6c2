"""Two stages for large placements: retrieval narrows, the ranker ranks what it kept."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from decision_worker.learning.replay import parse_log
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.embeddings import user_vector
from decision_worker.ranking.popularity import Popularity
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.retrieval import retrieve, variant_index

from ..conftest import NOW, track, write_catalog


def big_catalog_doc(variants: int, categories: int, expired: set[int]) -> dict:
    return {"format": 1, "rev": 1, "placements": {"feed": {"default": "v-00000", "variants": {
        f"v-{i:05d}": {"url": f"https://cdn.test/feed/v-{i:05d}.json",
                       "category": f"cat-{i % categories}", "tags": [f"t{i % 7}"],
                       "ends_at": "2020-01-01T00:00:00+00:00" if i in expired else None}
        for i in range(variants)}}}}


def fan_of(category: str, variant: str, clicks: int = 5) -> Profile:
    profile = Profile()
    events, _ = parse_log(
        {**track("fan", name, f"{name}-{n}", NOW - dt.timedelta(minutes=n), placement="feed",
                 variant=variant), "receivedAt": NOW.isoformat()}
        for n in range(clicks) for name in ("Variant Viewed", "Variant Clicked"))
    for n, event in enumerate(events):
        profile.apply(event, str(n), {f"feed/{variant}": category}, 86_400)
    return profile


def test_retrieval_keeps_the_users_taste_the_default_and_only_eligible_variants() -> None:
    expired = set(range(7, 20_000, 40))  # every variant of cat-7 but a few is expired
    catalog = Catalog.from_document(big_catalog_doc(20_000, 40, expired))
    feed = catalog.placements["feed"]
    profile = fan_of("cat-3", "v-00003")
    at = NOW.timestamp()
    eligible = feed.eligible(np.array([at]), [None], [([], np.zeros(0, np.uint64))])[0]
    popularity = Popularity().for_placement(feed)
    picked = retrieve(variant_index(catalog, "feed"), user_vector(profile, at), popularity,
                      eligible, feed, 200)
    assert len(picked) == 200 and feed.default_index in picked
    categories = [catalog.category_of[feed.keys[i]] for i in picked if i != feed.default_index]
    assert set(categories) == {"cat-3"}  # 500 cat-3 variants: the 199 kept are all cat-3
    assert not set(picked.tolist()) & expired
    # no history: popularity alone; the same call still returns the limit and the default
    cold = retrieve(variant_index(catalog, "feed"), user_vector(Profile(), at), popularity,
                    eligible, feed, 200)
    assert len(cold) == 200 and feed.default_index in cold


def test_a_default_the_user_may_not_see_costs_no_retrieved_candidate() -> None:
    catalog = Catalog.from_document(big_catalog_doc(2_000, 20, set()))
    feed = catalog.placements["feed"]
    at = NOW.timestamp()
    consumed = ([feed.keys[feed.default_index]], np.zeros(0, np.uint64))
    eligible = feed.eligible(np.array([at]), [None], [consumed])[0]
    assert not eligible[feed.default_index]
    popularity = Popularity().for_placement(feed)
    for limit in (1, 200):
        picked = retrieve(variant_index(catalog, "feed"), user_vector(Profile(), at),
                          popularity, eligible, feed, limit)
        # the default's row comes along; `limit` variants the user may be shown besides it
        assert feed.default_index in picked and int(eligible[picked].sum()) == limit
        kept = feed.subset(picked)
        mask = kept.eligible(np.array([at]), [None], [consumed])[0]
        assert not mask[kept.default_index] and int(mask.sum()) == limit


def test_worker_decides_a_large_placement_in_two_stages(redis, ingest, drain, decision,
                                                         worker_settings) -> None:
    doc = big_catalog_doc(3_000, 30, set())
    variants = {v: {k: m[k] for k in ("category", "tags")} for v, m in
                doc["placements"]["feed"]["variants"].items()}
    write_catalog(redis, {"feed": ("v-00000", variants)})
    user = "big-fan"
    history = [track(user, name, f"{name}-{n}", NOW - dt.timedelta(minutes=n), placement="feed",
                     variant=f"v-{12 + 30 * n:05d}")  # five variants of cat-12
               for n in range(5) for name in ("Variant Viewed", "Variant Clicked")]
    ingest(history + [track(user, "Session Started", "big-session")])
    settings = dataclasses.replace(worker_settings, rank_limit=100, holdout_share=0.0)
    worker = drain(settings)
    record = decision(user, "feed")
    assert record is not None and worker.totals.users_decided >= 1
    first = record.ranked[0]
    assert int(first[2:]) % 30 == 12  # the user's category, found among 3,000 by retrieval
