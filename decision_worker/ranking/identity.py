"""Identity: which messages tie an anonymous (or previous) id to a known user, and when the
tie merges the anonymous history into the user's. One rule for the online batch (on keyed
hashes of the ids) and the offline replay (on the ids themselves); `Profile.merge` then
folds the counts, once."""

from __future__ import annotations

from decision_worker.ingest.events import Event


def link_of(event: Event) -> tuple[str, str] | None:
    """(known user id, other id) when the message ties them: an `alias` (previousId), or
    any message carrying both a userId and a different anonymousId."""
    if event.user_id is None:
        return None
    other = event.previous_id if event.type == "alias" else event.anonymous_id
    if other is None or other == event.user_id:
        return None
    return event.user_id, other


def may_merge(merged_into: str | None, known: str) -> bool:
    """An anonymous id merges into `known` unless it already merged into someone else (an
    id shared by two accounts keeps its history with the first)."""
    return merged_into is None or merged_into == known
