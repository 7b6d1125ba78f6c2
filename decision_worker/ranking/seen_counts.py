"""Per-user plain counts of engagement per variant, what the placement policies' exclusions
and frequency caps read (placement_policy.py).

One int per "placement/variant", packed: views in the low 20 bits, clicks in the next 20,
conversions above them, each saturating at 2^20 − 1. Packed because every profile is
decoded and encoded on every event: a list per variant made the worker 12 % slower, an int
costs little. The dict keeps the order of last engagement (a touched key moves to the end),
so when it is full the variant engaged longest ago goes first.
"""

from __future__ import annotations

MAX_SEEN = 512
BITS = 20
MASK = (1 << BITS) - 1
SeenCounts = dict[str, int]


def unpack(packed: int) -> tuple[int, int, int]:
    """(views, clicks, conversions)."""
    return packed & MASK, (packed >> BITS) & MASK, packed >> (2 * BITS)


def pack(views: int, clicks: int, conversions: int) -> int:
    return min(views, MASK) | min(clicks, MASK) << BITS | min(conversions, MASK) << (2 * BITS)


def add(seen: SeenCounts, key: str, kind: int, times: int = 1) -> tuple[str, int] | None:
    """Count `times` engagements of `kind` (0 view, 1 click, 2 conversion) with `key`;
    returns the (key, packed counts) it pushed out when `seen` was full (the caller
    archives it, seen_archive.py)."""
    counts = list(unpack(seen.pop(key, 0)))
    counts[kind] += times
    seen[key] = pack(*counts)
    if len(seen) > MAX_SEEN:
        oldest = next(iter(seen))
        return oldest, seen.pop(oldest)
    return None


def merge(into: SeenCounts, other: SeenCounts) -> list[tuple[str, int]]:
    """Add `other`'s counts into `into` (an anonymous history joining a known user's);
    returns what that pushed out."""
    pushed = []
    for key, packed in other.items():
        for kind, times in enumerate(unpack(packed)):
            if times and (out := add(into, key, kind, times)) is not None:
                pushed.append(out)
    return pushed
