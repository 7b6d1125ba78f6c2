"""Trending in the user's context: new users from an email campaign, a search engine or
nowhere in particular like different variants; what trends overall is a three-way tie,
what trends in their context is not. Training must find that out on its validation
window and serve new users by it."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from decision_worker.ingest.event_log import EventLog
from decision_worker.learning.pipeline import run_training
from decision_worker.learning.registry import Registry
from decision_worker.learning.synthetic import log_messages
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.features import COLUMN, FEATURES, context_trend
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from object_store.folder import FolderStore
from tests.conftest import Settings

from .test_learning import END

VARIANTS = [f"v{i}" for i in range(6)]
CATALOG = Catalog.from_document({"format": 1, "rev": 1, "placements": {"hero": {
    "default": "v5", "variants": {
        v: {"url": f"https://cdn.test/content/hero/variant-{v}.0123abcd.json",
            "category": f"look-{i % 3}"} for i, v in enumerate(VARIANTS)}}}})
# Where a new user comes from → the variant they like (the others they click rarely).
FAVOURITE = {"email": "v0", "search": "v1", "direct": "v2"}
CONTEXTS: dict[str, dict[str, Any]] = {
    "email": {"campaign": {"medium": "email", "name": "winter"}},
    "search": {"page": {"referrer": "https://www.google.com/search?q=tents"}},
    "direct": {}}


def new_users(n: int, days: float, seed: int) -> Iterator[dict[str, Any]]:
    """Each user comes once: a session start, one variant shown, perhaps a click."""
    rng = random.Random(seed)
    start = END - dt.timedelta(days=days)
    for i in range(n):
        source = rng.choice(list(FAVOURITE))
        at = start + dt.timedelta(seconds=days * 86_400 * i / n)
        user = f"visitor-{seed}-{i}"
        shown = FAVOURITE[source] if rng.random() < 0.5 else rng.choice(VARIANTS)
        yield {"type": "track", "event": "Session Started", "userId": user,
               "messageId": f"s-{user}", "timestamp": at.isoformat(),
               "context": {"userAgent": "Mozilla/5.0 (X11; Linux)", **CONTEXTS[source]}}
        track = {"type": "track", "userId": user, "properties": {
            "placement": "hero", "variant": shown, "position": 1}}
        yield {**track, "event": "Variant Viewed", "messageId": f"v-{user}",
               "timestamp": (at + dt.timedelta(seconds=2)).isoformat()}
        if rng.random() < (0.6 if shown == FAVOURITE[source] else 0.03):
            yield {**track, "event": "Variant Clicked", "messageId": f"c-{user}",
                   "timestamp": (at + dt.timedelta(seconds=9)).isoformat()}


def test_new_users_are_served_what_trends_in_their_context(tmp_path: Path) -> None:
    log = EventLog(FolderStore(tmp_path))
    log_messages(log, new_users(6000, 6, seed=2))
    registry = Registry(FolderStore(tmp_path))
    report = run_training(log, CATALOG, registry, Settings().lateness_s, days=7,
                          until=END + dt.timedelta(minutes=5))
    card = registry.load(report.version)[1]
    assert card["cold_start"]["context"] is True, card["cold_start"]
    assert "ctx_source_trend_30d" in card["columns"]
    # On the test window every session start is a new user's: served by context, they
    # click clearly more often than served by what trends overall.
    new = report.by_history["no history"]
    against = next(v for k, v in new.items() if k.startswith("vs trending"))
    assert against["low"] > 0, new
    # and the ranker, as the worker loads it, puts each source's favourite first
    ranker = LightGBMRanker.from_card(report.version, registry.load(report.version)[0], card)
    rows = np.zeros((len(VARIANTS), len(FEATURES)))
    rows[:, COLUMN["trend_30d"]] = np.log(1 / 6)
    rows[:, COLUMN["ctx_trend_30d"]] = np.log(1 / 6)
    rows[:, COLUMN["ctx_source_trend_30d"]] = np.log([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    rows[:, COLUMN["ctx_language_trend_30d"]] = np.log(1 / 6)
    assert ranker.score(rows).argmax() == 0
    assert np.array_equal(ranker.score(rows), context_trend(rows))
