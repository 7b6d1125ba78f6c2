"""Pin a decision by hand: content editors preview a variant as a given user; tests use it."""

from __future__ import annotations

import time

from redis import Redis

from edge_functions.decision_record import DecisionRecord, encode
from edge_functions.errors import InvalidIdentifier, UnknownPlacement
from edge_functions.identifiers import check_id, check_user_id
from edge_functions.keys import MANIFEST_KEY, decision_key, user_tag
from edge_functions.manifest import EMPTY, parse_bytes

PIN_MODEL = "pinned"
PIN_ARM = "pinned"


def pin(redis: Redis, secret: bytes, user_id: str, placement: str, variants: list[str],
        ttl_s: int) -> DecisionRecord:
    """Write a decision ranking `variants` for one user and placement, with a TTL.

    Every variant must be published in the placement now: a pin that would silently fall
    back to the default is a mistake the editor wants to hear about.
    """
    check_user_id(user_id)
    check_id("placement", placement)
    for variant in variants:
        check_id("variant", variant)
    if ttl_s <= 0:
        raise InvalidIdentifier(f"ttl must be a positive number of seconds, got {ttl_s}")
    raw = redis.get(MANIFEST_KEY)
    entry = (EMPTY if raw is None else parse_bytes(raw)).placements.get(placement)
    if entry is None:
        raise UnknownPlacement(f"placement {placement!r} is not published")
    missing = [v for v in variants if v not in entry.urls]
    if missing:
        raise UnknownPlacement(f"variant(s) {', '.join(missing)} not published in {placement!r}")
    record = DecisionRecord(tuple(variants), PIN_MODEL, PIN_ARM, int(time.time()))
    redis.set(decision_key(user_tag(secret, user_id), placement), encode(record), ex=ttl_s)
    return record
