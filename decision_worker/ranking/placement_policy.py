"""A placement's decision policy, as the manifest carries it (written by the publisher from
the placement's `_placement.yaml`, content_variants/placement_settings.py).

The worker and the offline replay both read it from the catalog, so a decision and its
replay exclude the same variants and rank the same number of slots. A manifest entry without
a policy (published before policies existed) ranks `EDGEPICK_RANKED_SIZE` slots and excludes
only offers the user converted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from decision_worker.ranking.counters import KINDS  # the first columns of Profile.seen


@dataclass(frozen=True)
class PlacementPolicy:
    slots: int | None  # None: the worker's EDGEPICK_RANKED_SIZE
    exclude: frozenset[str]  # kinds of engagement after which a variant is not offered again
    max_views: int  # not offered once viewed this many times (0: no cap)
    include_default: bool  # the default must be in the ranked list

    @classmethod
    def from_manifest(cls, policy: Any) -> PlacementPolicy:
        """The entry's `policy` (already validated by the publisher); tolerant of a missing
        or partial one, which gets the defaults above."""
        if not isinstance(policy, dict):
            return LEGACY_POLICY
        slots = policy.get("slots")
        exclude = policy.get("exclude")
        max_views = policy.get("max_views")
        return cls(int(slots) if isinstance(slots, int) and slots >= 1 else None,
                   frozenset(k for k in exclude if k in KINDS)
                   if isinstance(exclude, list) else LEGACY_POLICY.exclude,
                   int(max_views) if isinstance(max_views, int) and max_views > 0 else 0,
                   bool(policy.get("include_default", False)))

    def slots_or(self, ranked_size: int) -> int:
        return self.slots if self.slots is not None else ranked_size

    def excluded(self, seen: dict[str, list[int]], placement: str) -> list[str]:
        """The "placement/variant" keys of `placement` this user is not to be offered
        (`seen`: Profile.seen, [views, clicks, conversions, last time] per key)."""
        if not seen:
            return []
        prefix = f"{placement}/"
        no_views, no_clicks, no_conversions = (k in self.exclude for k in KINDS)
        cap = self.max_views or 2**62
        return [key for key, (views, clicks, conversions, _) in seen.items()
                if key.startswith(prefix) and (
                    views >= cap or (no_clicks and clicks > 0)
                    or (no_conversions and conversions > 0) or (no_views and views > 0))]


LEGACY_POLICY = PlacementPolicy(None, frozenset({"conversion"}), 0, False)
