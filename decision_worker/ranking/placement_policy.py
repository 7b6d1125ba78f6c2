"""A placement's decision policy, as the manifest carries it (written by the publisher from
the placement's `_placement.yaml`, content_variants/placement_settings.py).

The worker and the offline replay both read it from the catalog, so a decision and its
replay exclude the same variants and rank the same number of slots. A manifest entry without
a policy (published before policies existed) ranks `EDGEPICK_RANKED_SIZE` slots, excludes
only offers the user converted on and does not explore (what it did before policies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from decision_worker.ranking import seen_archive
from decision_worker.ranking.counters import KINDS
from decision_worker.ranking.seen_counts import BITS, MASK, SeenCounts


@dataclass(frozen=True)
class PlacementPolicy:
    slots: int | None  # None: the worker's EDGEPICK_RANKED_SIZE
    exclude: frozenset[str]  # kinds of engagement after which a variant is not offered again
    max_views: int  # not offered once viewed this many times (0: no cap)
    include_default: bool  # the default must be in the ranked list
    exploration: float = 0.0  # epsilon: share of first slots drawn at random (exploration.py)
    explore_new: float = 0.0  # share of those draws among new variants, when there are any

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
                   bool(policy.get("include_default", False)),
                   _share(policy.get("exploration"), MAX_EXPLORATION),
                   _share(policy.get("explore_new"), 1.0))

    def slots_or(self, ranked_size: int) -> int:
        return self.slots if self.slots is not None else ranked_size

    def excluded(self, seen: SeenCounts, placement: str) -> list[str]:
        """The "placement/variant" keys of `placement` this user is not to be offered
        (`seen`: Profile.seen, counts packed as seen_counts.py says; read here with bit
        operations, since this runs for every user and placement decided)."""
        if not seen:
            return []
        prefix = f"{placement}/"
        no_views, no_clicks, no_conversions = (k in self.exclude for k in KINDS)
        cap = self.max_views or MASK + 1
        views_of, clicks_of, conversions_from = MASK, MASK << BITS, 1 << (2 * BITS)
        return [key for key, c in seen.items()
                if ((c & views_of) >= cap or (no_clicks and c & clicks_of)
                    or (no_conversions and c >= conversions_from)
                    or (no_views and c & views_of)) and key.startswith(prefix)]

    def excluded_archived(self, archive: str) -> np.ndarray:
        """Hashes of the variants in the user's archive (Profile.seen_archive, for every
        placement) this policy leaves out."""
        if not archive:  # most users: nothing archived (no decoding, no arrays)
            return _NONE_ARCHIVED
        no_views, no_clicks, no_conversions = (k in self.exclude for k in KINDS)
        return seen_archive.excluded_hashes(archive, no_views, no_clicks, no_conversions,
                                            self.max_views)


def _share(value: Any, most: float) -> float:
    """A probability as the publisher validated it; anything else: 0 (no exploration)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0.0
    return float(min(max(value, 0.0), most))


MAX_EXPLORATION = 0.5  # more would be a random policy with a ranker attached
_NONE_ARCHIVED = np.zeros(0, dtype=np.uint64)
_NONE_ARCHIVED.flags.writeable = False
LEGACY_POLICY = PlacementPolicy(None, frozenset({"conversion"}), 0, False)
