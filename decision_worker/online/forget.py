"""`edgepick forget` and `POST /v1/privacy/forget`: Segment's "suppress with delete".

For each user id, and every id linked to it (anonymous ids merged into it, or the known user
an anonymous id was merged into, and that user's other links):
1. a tombstone in the event log (`events/tombstones/`), first and durably, so training
   never learns from the id's logged events again (replay.py skips them);
2. the id's keyed hash in `{ep:events}:suppressed`: the events API drops the id's future
   messages, the worker applies none already in the stream;
3. the profile replaced by a marker holding no data (`forgotten`, with the profile TTL), so a
   worker holding the old profile in a batch loses its compare-and-set and re-reads;
   every decision key (the published placements and those the profile was decided for) and
   the why-record deleted; the id removed from the refresh schedule; its field (its
   exposures, clicks and conversions, over the experiment and per placement: one field per
   user, keyed by its tag) removed from the per-user hashes of every stored experiment's arm
   counters, each step and "all" (the arms' sums keep its contribution: totals over many
   users, nothing of one).
Nothing here needs the ids in the clear beyond hashing them: keys and tombstones hold only
the keyed hashes. Running it twice is harmless.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from decision_worker.ingest.event_log import EventLog
from decision_worker.keys import (
    ARM_OWNERS,
    EXPERIMENTS,
    REDECIDE_DUE,
    SUPPRESSED,
    arm_users_key,
    profile_key,
    why_key,
)
from decision_worker.ranking.experiment import PERSONALIZATION, Experiment, ExperimentError
from decision_worker.ranking.profile import Profile
from edge_functions.errors import CorruptRecord
from edge_functions.identifiers import check_user_id
from edge_functions.keys import MANIFEST_KEY, decision_key, user_tag
from edge_functions.manifest import parse_bytes

MAX_IDS_PER_REQUEST = 100
MAX_LINK_HOPS = 3  # user → linked anonymous ids → (a merge target) → its links


@dataclass
class ForgetReport:
    users: int  # ids asked for
    ids: int  # ids forgotten, linked ones included
    keys_deleted: int  # decision keys and why-records


async def forget(redis: Redis, log_: EventLog, secret: bytes, user_ids: Iterable[str],
                 placements: Iterable[str], profile_ttl_s: int) -> ForgetReport:
    """Forget `user_ids` (validated: a malformed id raises InvalidIdentifier first)."""
    asked = [check_user_id(u) for u in user_ids]
    tags = {user_tag(secret, u) for u in asked}
    profiles: dict[str, Profile] = {}
    for _ in range(MAX_LINK_HOPS):
        new = sorted(tags - set(profiles))
        if not new:
            break
        raws: list[Any] = await redis.mget([profile_key(t) for t in new])
        for t, raw in zip(new, raws, strict=True):
            profile = Profile.loads(raw)
            profiles[t] = profile
            tags.update(profile.linked)
            if profile.merged_into:
                tags.add(profile.merged_into)
    now = dt.datetime.now(dt.UTC).isoformat()
    ordered = sorted(tags)
    await asyncio.to_thread(log_.append_tombstones, [{"tag": t, "at": now} for t in ordered])
    decided = set(placements)
    for profile in profiles.values():
        decided.update(profile.placements)
    counters = await arm_user_keys(redis)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(SUPPRESSED, mapping={t: now for t in ordered})
        pipe.zrem(REDECIDE_DUE, *ordered)
        for t in ordered:
            marker = Profile(version=profiles.get(t, Profile()).version + 1, forgotten=True)
            pipe.set(profile_key(t), marker.dumps(), ex=profile_ttl_s)
            pipe.delete(why_key(t), *(decision_key(t, p) for p in sorted(decided)))
        for key in counters:
            pipe.hdel(key, *ordered)
        pipe.hdel(ARM_OWNERS, *ordered)
        replies = await pipe.execute()
    deleted = sum(int(r) for r in replies[2:2 + 2 * len(ordered)][1::2])
    return ForgetReport(len(asked), len(ordered), deleted)


async def arm_user_keys(redis: Redis) -> list[str]:
    """The per-user hashes of every stored experiment's arm counters (each step and "all"),
    and of the comparison of personalization with the holdout."""
    stored: dict[Any, Any] = await redis.hgetall(EXPERIMENTS)
    keys = [arm_users_key(PERSONALIZATION, 0), arm_users_key(PERSONALIZATION, "all")]
    for raw in stored.values():
        try:
            experiment = Experiment.loads(raw)
        except ExperimentError:
            continue
        keys += [arm_users_key(experiment.id, step) for step in range(len(experiment.steps))]
        keys.append(arm_users_key(experiment.id, "all"))
    return keys


async def published_placements(redis: Redis) -> list[str]:
    """The manifest's placements (none when it is missing or unreadable: the decisions
    the profiles were recorded for are still deleted)."""
    raw: Any = await redis.get(MANIFEST_KEY)
    if raw is None:
        return []
    try:
        return sorted(parse_bytes(raw).placements)
    except CorruptRecord:
        return []
