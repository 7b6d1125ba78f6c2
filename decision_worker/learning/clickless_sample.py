"""Evaluation's slates without a click, sampled: what made training slow, kept at a rate.

A slate nobody clicked carries no ranking signal (every NDCG of it is 0), but it does enter
three figures of the evaluation window: AUC of click prediction, the content flags' expected
clicks, and which variant each model would show first (coverage, diversity). A busy log has
far more of them than anything else (93 % of the synthetic benchmark's slates), and each
costs a replayed moment with every candidate's row. So when the window holds more than
`KEPT` of them, each is kept with probability `share` (by a stable hash of the slate, the same
in every worker process) and counted `1 / share` times in those figures: an unbiased
estimate of the whole window's (the Horvitz-Thompson weight), as ad systems evaluate on
down-sampled negatives. Slates with a click, and session starts, are all kept.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from decision_worker.ingest.events import Event
from decision_worker.learning.slates import label_of

KEPT = 10_000  # click-less evaluation slates training reads, in expectation


@dataclass(frozen=True)
class ClicklessSample:
    share: float = 1.0  # of the click-less evaluation slates, the part kept
    found: int = 0  # how many the window held

    def keeps(self, key: tuple[str, str, float]) -> bool:
        if self.share >= 1.0:
            return True
        who, placement, at = key
        return zlib.crc32(f"{who}|{placement}|{at!r}".encode()) < self.share * 2 ** 32

    @property
    def weight(self) -> float:
        return 1.0 / self.share


def plan(slates: Mapping[tuple[str, str, float], list[Event]],
         engaged: dict[tuple[str, str, str, str], list[float]], window: tuple[float, float],
         attribution_s: float, kept: int | None) -> ClicklessSample:
    """The sampling rate for the slates of two or more views shown in `window` that no
    click or conversion followed: at most `kept` of them in expectation (None: all)."""
    since, until = window
    found = 0
    for (who, placement, at), shown in slates.items():
        if since <= at < until and len(shown) > 1 and not any(
                label_of(engaged, who, placement, view.engagement.variant, at, attribution_s)
                for view in shown if view.engagement is not None):
            found += 1
    return ClicklessSample(min(1.0, kept / found) if found and kept is not None else 1.0,
                           found)
