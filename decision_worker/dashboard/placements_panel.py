"""The placements panel: every published placement (the manifest in Redis) with its top
variants by clicks, from the engagement counts the worker keeps (`STATS_KEY`, ranking/
popularity.py): views, clicks, raw click-through and the smoothed click-through the ranker
reads (the same `smooth`, so the figure here is the ranker's)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from redis.asyncio import Redis

from decision_worker.keys import STATS_KEY
from decision_worker.ranking.context import DEVICES
from decision_worker.ranking.popularity import smooth, stat_field
from edge_functions.errors import CorruptRecord
from edge_functions.keys import MANIFEST_KEY
from edge_functions.manifest import parse_document

TOP = 5
PLACEMENTS_SHOWN = 24


async def placements_panel(redis: Redis) -> dict[str, Any]:
    """Raises RedisError (the route answers 503)."""
    raw: Any = await redis.get(MANIFEST_KEY)
    if raw is None:
        return {"error": "no manifest in Redis: nothing is published (edgepick publish)",
                "manifest_rev": None, "items": []}
    try:
        doc = json.loads(raw)
        manifest = parse_document(doc)
    except (ValueError, CorruptRecord) as e:
        return {"error": f"the manifest does not load: {e}", "manifest_rev": None, "items": []}
    stats: dict[Any, Any] = await redis.hgetall(STATS_KEY)
    counts = {k.decode(): float(v) for k, v in stats.items()}
    items: list[dict[str, Any]] = []
    for placement, urls in manifest.placements.items():
        titles = {v: str(meta.get("title") or "") for v, meta in
                  doc["placements"][placement]["variants"].items()}
        items.append(placement_summary(placement, urls.default, sorted(urls.urls), titles,
                                       counts))
    items.sort(key=lambda item: (-item["views"], item["placement"]))
    return {"error": None, "manifest_rev": manifest.rev, "placements": len(items),
            "items": items[:PLACEMENTS_SHOWN]}


def placement_summary(placement: str, default: str, variants: list[str],
                      titles: dict[str, str], counts: dict[str, float]) -> dict[str, Any]:
    keys = [f"{placement}/{v}" for v in variants]
    views = np.array([counts.get(stat_field("view", k), 0.0) for k in keys])
    clicks = np.array([counts.get(stat_field("click", k), 0.0) for k in keys])
    none = np.zeros((len(DEVICES), len(keys)))
    smoothed = smooth(views, clicks, none, none).ctr
    rows: list[dict[str, Any]] = [
        {"variant": v, "title": titles.get(v, ""), "default": v == default,
         "views": float(views[i]), "clicks": float(clicks[i]),
         "ctr": float(clicks[i] / views[i]) if views[i] > 0 else None,
         "smoothed_ctr": float(smoothed[i])} for i, v in enumerate(variants)]
    rows.sort(key=lambda r: (-r["clicks"], -r["smoothed_ctr"], r["variant"]))
    return {"placement": placement, "default": default, "variants": len(variants),
            "views": float(views.sum()), "clicks": float(clicks.sum()), "top": rows[:TOP]}
