"""The log's slates and what followed them: the views shown together (one user, placement
and moment), and the clicks and conversions that label them (examples.py)."""

from __future__ import annotations

import bisect
from collections import defaultdict

from decision_worker.ingest.events import Event

LABEL = {"view": 0, "click": 1, "conversion": 2}


def engagement_times(events: list[Event]) -> dict[tuple[str, str, str, str], list[float]]:
    """(user, placement, variant, click|conversion) → sorted event times, for labels."""
    engaged: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for event in events:
        e = event.engagement
        if e is not None and e.kind != "view":
            who = event.user_id or event.anonymous_id or ""
            engaged[(who, e.placement, e.variant, e.kind)].append(event.timestamp.timestamp())
    for times in engaged.values():
        times.sort()
    return engaged


def shown_slates(events: list[Event]) -> dict[tuple[str, str, float], list[Event]]:
    """(user, placement, time) → the views shown together, in log order."""
    slates: dict[tuple[str, str, float], list[Event]] = defaultdict(list)
    for event in events:
        e = event.engagement
        if e is not None and e.kind == "view":
            who = event.user_id or event.anonymous_id or ""
            slates[(who, e.placement, event.timestamp.timestamp())].append(event)
    return slates


def decision_span(events: list[Event], since: float, until: float,
                  slates: dict[tuple[str, str, float], list[Event]] | None = None
                  ) -> tuple[float, float] | None:
    """When the first and the last slate in [since, until) were shown or session started
    (`slates`: `shown_slates(events)`, if found already), to place the train / validation /
    evaluation cuts before the expensive replay; None when there are none."""
    slates = shown_slates(events) if slates is None else slates
    times = [at for _, _, at in slates if since <= at < until]
    times.extend(at for event in events if event.session_start and not (
        event.engagement is not None and event.engagement.kind == "view")
        and since <= (at := event.timestamp.timestamp()) < until)
    return (min(times), max(times)) if times else None


def label_of(engaged: dict[tuple[str, str, str, str], list[float]], who: str, placement: str,
           variant: str, at: float, window: float) -> int:
    best = 0
    for kind in ("click", "conversion"):
        times = engaged.get((who, placement, variant, kind))
        if times:
            i = bisect.bisect_left(times, at)
            if i < len(times) and times[i] <= at + window:
                best = max(best, LABEL[kind])
    return best
