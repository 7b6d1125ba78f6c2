"""A benchmark catalog and population: placements × candidates written to the manifest,
popularity counts for every variant, and users whose profiles already hold some history."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from redis import Redis

from content_variants.manifest_writer import apply
from decision_worker.ingest.events import validate_message
from decision_worker.keys import STATS_KEY, profile_key
from decision_worker.ranking.popularity import stat_field
from decision_worker.ranking.profile import Profile
from edge_functions.keys import user_tag

CATEGORIES = [f"cat-{i}" for i in range(12)]


def write_catalog(redis: Redis, placements: int, candidates: int,
                  policy: dict[str, Any] | None = None) -> dict[str, str]:
    """Returns "placement/variant" → category. `policy`: every placement's decision policy
    as the manifest carries it (None: none, as published before policies existed)."""
    category_of: dict[str, str] = {}

    def change(doc: dict[str, Any]) -> None:
        for p in range(placements):
            placement = f"slot-{p}"
            variants = {}
            for v in range(candidates):
                variant = f"v-{v:03d}"
                category = CATEGORIES[(v + p) % len(CATEGORIES)]
                category_of[f"{placement}/{variant}"] = category
                variants[variant] = {
                    "url": f"https://cdn.bench/content/{placement}/variant-{variant}.0a1b2c3d.json",
                    "digest": "0a1b2c3d", "title": variant, "category": category, "tags": [],
                    "locale": "es-ES" if v % 10 == 9 else None, "starts_at": None,
                    "ends_at": None}
            doc["placements"][placement] = {"default": "v-000", "variants": variants}
            if policy is not None:
                doc["placements"][placement]["policy"] = policy

    apply(redis, change)
    rng = random.Random(1)
    with redis.pipeline(transaction=False) as pipe:
        for key in category_of:
            views = rng.randint(100, 5000)
            pipe.hset(STATS_KEY, mapping={
                stat_field("view", key): views,
                stat_field("click", key): int(views * rng.uniform(0.01, 0.1)),
                stat_field("view", key, "mobile"): views // 2,
                stat_field("click", key, "mobile"): int(views * rng.uniform(0.005, 0.05))})
        pipe.execute()
    return category_of


def write_profiles(redis: Redis, secret: bytes, users: list[str], category_of: dict[str, str],
                   events_per_user: int = 20) -> None:
    """Profiles as the worker would have built them from each user's past engagement."""
    rng = random.Random(2)
    keys = list(category_of)
    now = dt.datetime.now(dt.UTC)
    with redis.pipeline(transaction=False) as pipe:
        for n, user in enumerate(users):
            profile = Profile()
            for i in range(events_per_user):
                placement, variant = rng.choice(keys).split("/")
                at = now - dt.timedelta(hours=rng.uniform(1, 72))
                name = "Variant Clicked" if rng.random() < 0.3 else "Variant Viewed"
                event = validate_message(0, {
                    "type": "track", "event": name, "userId": user, "messageId": f"{user}-{i}",
                    "timestamp": at.isoformat(), "properties": {
                        "placement": placement, "variant": variant, "position": 0}}, now)
                assert not hasattr(event, "field")
                profile.apply(event, f"0-{i}", category_of, 3 * 86_400)  # type: ignore[arg-type]
            profile.version = 1
            pipe.set(profile_key(user_tag(secret, user)), profile.dumps(), ex=86_400)
            if n % 1000 == 999:
                pipe.execute()
        pipe.execute()


def session_record(user: str, i: int, received: dt.datetime) -> dict[str, Any]:
    """A stream record as the ingest API writes it (the Segment message + receivedAt)."""
    stamp = received.isoformat().replace("+00:00", "Z")
    return {"type": "track", "event": "Session Started", "userId": user,
            "messageId": f"bench-{user}-{i}", "timestamp": stamp, "receivedAt": stamp,
            "context": {"userAgent": "Mozilla/5.0 (iPhone) Mobile", "locale": "en-US",
                        "page": {"referrer": "https://www.google.com/"}}}
