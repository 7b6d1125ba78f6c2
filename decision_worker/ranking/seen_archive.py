"""What a user engaged with longest ago, kept compactly so exclusions never forget it.

`Profile.seen` holds plain counts for the 512 variants engaged most recently (seen_counts.py):
enough for features, not for a placement policy that never offers a consumed variant again.
A MovieLens user with 1,000 ratings saw 488 of them offered again before this existed, and
those wasted slots cost the product its lead over trending for returning users.

A variant leaving `seen` moves here: one uint64 per variant, the CRC-32 of its
"placement/variant" key in the high 32 bits and its counts, cut down, in the low 32 (views
saturating at 2^20 − 1, then one bit each for "clicked" and "converted"). The archive is
stored in the profile as base64 (8 bytes a variant), holds `MAX_ARCHIVED` variants and
drops the one archived longest ago first. A CRC collision (odds about one in 500,000 for a
user of 8,192 variants and one candidate) can only exclude a variant wrongly, never show
one the policy excludes. A variant engaged again moves back to `seen` with its views and
at most one click and one conversion.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Sequence

import numpy as np

from decision_worker.ranking.seen_counts import BITS, MASK, unpack

MAX_ARCHIVED = 8192
_CLICKED = 1 << BITS
_CONVERTED = 1 << (BITS + 1)
_LOW = (1 << 32) - 1


def key_hash(key: str) -> int:
    """The 32-bit hash an archived key is known by (stable across processes)."""
    return zlib.crc32(key.encode("utf-8"))


def key_hashes(keys: Sequence[str]) -> np.ndarray:
    """(V,) uint64 hashes of "placement/variant" keys (computed once per catalog)."""
    return np.fromiter((key_hash(k) for k in keys), np.uint64, len(keys))


def decode(archive: str) -> np.ndarray:
    """The stored archive as uint64 entries (empty for an empty or unreadable one)."""
    if not archive:
        return np.zeros(0, dtype=np.uint64)
    try:
        raw = base64.b64decode(archive, validate=True)
    except (binascii.Error, ValueError):
        return np.zeros(0, dtype=np.uint64)
    return np.frombuffer(raw[:len(raw) - len(raw) % 8], dtype="<u8").astype(np.uint64)


def encode(entries: np.ndarray) -> str:
    return base64.b64encode(entries.astype("<u8").tobytes()).decode("ascii")


def add(archive: str, key: str, packed: int) -> str:
    """`archive` with `key` (counts `packed`, as seen_counts.py packs them) appended."""
    views, clicks, conversions = unpack(packed)
    low = min(views, MASK) | (_CLICKED if clicks else 0) | (_CONVERTED if conversions else 0)
    entries = decode(archive)
    entries = entries[entries >> np.uint64(32) != key_hash(key)]
    entry = np.array([(key_hash(key) << 32) | low], dtype=np.uint64)
    return encode(np.concatenate([entries, entry])[-MAX_ARCHIVED:])


def pop(archive: str, key: str) -> tuple[str, tuple[int, int, int] | None]:
    """(`archive` without `key`, its (views, clicks, conversions), or None if absent)."""
    if not archive:
        return archive, None
    entries = decode(archive)
    found = np.flatnonzero(entries >> np.uint64(32) == key_hash(key))
    if not len(found):
        return archive, None
    low = int(entries[found[-1]]) & _LOW
    counts = (low & MASK, int(bool(low & _CLICKED)), int(bool(low & _CONVERTED)))
    return encode(np.delete(entries, found)), counts


def merge(into: str, other: str) -> str:
    """Both archives, `other`'s entries counted as the more recent."""
    if not other:
        return into
    theirs = decode(other)
    mine = decode(into)
    mine = mine[~np.isin(mine >> np.uint64(32), theirs >> np.uint64(32))]
    return encode(np.concatenate([mine, theirs])[-MAX_ARCHIVED:])


def excluded_hashes(archive: str, exclude_views: bool, exclude_clicks: bool,
                    exclude_conversions: bool, max_views: int) -> np.ndarray:
    """Hashes of the archived variants a placement policy leaves out (its rules, on the
    cut-down counts: any view, any click, any conversion, or views at the cap)."""
    entries = decode(archive)
    if not len(entries):
        return entries
    low = entries & np.uint64(_LOW)
    views = low & np.uint64(MASK)
    out = np.zeros(len(entries), dtype=bool)
    if exclude_views:
        out |= views > 0
    if exclude_clicks:
        out |= (low & np.uint64(_CLICKED)) > 0
    if exclude_conversions:
        out |= (low & np.uint64(_CONVERTED)) > 0
    if max_views:
        out |= views >= max_views
    result: np.ndarray = entries[out] >> np.uint64(32)
    return result


def size(archive: str) -> int:
    """Variants archived (without decoding)."""
    return len(archive) * 3 // 4 // 8
