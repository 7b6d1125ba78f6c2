"""Deterministic, sticky bucketing, compatible with GrowthBook's hash version 2.

`gbhash(seed, id)` is FNV-1a 32 over `seed + id`, hashed again over its decimal string,
then `% 10000 / 10000`: a number in [0, 1) with 4 decimal places. The same user always lands
in the same place, worker and edge agree, and a GrowthBook SDK given the same seed and id
reproduces the assignment, so experiments can be analysed there.

Characters are hashed by Unicode code point (as GrowthBook's Python SDK does). GrowthBook's
JavaScript SDK hashes UTF-16 code units, which agree for every character of the Basic
Multilingual Plane (all the test vectors) and differ for astral ones such as emoji.
"""

from __future__ import annotations

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
HOLDOUT_SEED = "edgepick-holdout"


def fnv1a32(text: str) -> int:
    value = FNV_OFFSET
    for char in text:
        value = ((value ^ ord(char)) * FNV_PRIME) & 0xFFFFFFFF
    return value


def gbhash(seed: str, hash_value: str, version: int = 2) -> float:
    """GrowthBook's hash: version 2 by default; version 1 is kept for its test vectors."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + hash_value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(hash_value + seed) % 1000) / 1000
    raise ValueError(f"unknown hash version {version}")


def holdout_bucket(user_id: str, seed: str = HOLDOUT_SEED) -> float:
    """Where a user falls in the holdout's hash range (kept with the profile, so a scheduled
    re-decision, which knows only the user's key, decides the same)."""
    return gbhash(seed, user_id)


def in_holdout_bucket(bucket: float, share: float) -> bool:
    """A persistent holdout: the lowest `share` of the hash range, for ever."""
    return bucket < share


def in_holdout(user_id: str, share: float, seed: str = HOLDOUT_SEED) -> bool:
    return in_holdout_bucket(holdout_bucket(user_id, seed), share)
