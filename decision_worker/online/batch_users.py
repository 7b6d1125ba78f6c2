"""A batch's entries grouped by the user they belong to, identity links applied first.

A batch's identify/alias takes effect for the whole batch, so an anonymous event next to
the login lands in the known user's profile; an anonymous id already merged into a known
user sends its events, and its scheduled refreshes, there, and is written that user's
decisions (so a person is served one experiment arm: docs/experiments.md). An id already
merged into another account is left to that account. Forgotten (suppressed) ids link
nothing. Pure: the profiles are
read before, and written after, by batch.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from decision_worker.ingest.events import Event
from decision_worker.online.stream_entries import Redecide
from decision_worker.ranking.identity import link_of, may_merge
from decision_worker.ranking.profile import Profile
from edge_functions.keys import user_tag

Loaded = dict[str, tuple[Profile, bytes | None]]  # tag → (profile, raw as read)


class Tags:
    """User ids → their keyed hashes, each computed once per batch."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._of: dict[str, str] = {}

    def __call__(self, user_id: str) -> str:
        if user_id not in self._of:
            self._of[user_id] = user_tag(self._secret, user_id)
        return self._of[user_id]


@dataclass
class BatchUser:
    profile: Profile
    raw: bytes | None  # as read, for the compare-and-set
    events: list[tuple[str, Event]] = field(default_factory=list)
    redecide_due: float | None = None  # a scheduled re-decision, when one is in the batch
    extra_tags: set[str] = field(default_factory=set)  # anonymous ids that should see it
    user_id: str | None = None
    anonymous_id: str | None = None
    linked: bool = False
    changed: bool = False
    suppressed: bool = False  # forgotten: nothing is read, applied or written


def wanted_tags(items: list[tuple[str, Event | Redecide]], tag: Tags) -> set[str]:
    wanted: set[str] = set()
    for _, item in items:
        if isinstance(item, Redecide):
            wanted.add(item.tag)
            continue
        for user_id in (item.user_id, item.anonymous_id, item.previous_id):
            if user_id is not None:
                wanted.add(tag(user_id))
    return wanted


def group_by_user(items: list[tuple[str, Event | Redecide]], loaded: Loaded,
                  suppressed: set[str], tag: Tags
                  ) -> tuple[dict[str, BatchUser], dict[str, BatchUser]]:
    """(users by tag, anonymous profiles marked as merged in this batch)."""
    users: dict[str, BatchUser] = {}
    anonymous: dict[str, BatchUser] = {}

    def user_for(t: str) -> BatchUser:
        if t not in users:
            profile, raw = loaded.get(t) or (Profile(), None)
            users[t] = BatchUser(profile, raw, suppressed=t in suppressed or profile.forgotten)
        return users[t]

    merged = {t: p.merged_into for t, (p, _) in loaded.items() if p.merged_into}
    for _, item in items:
        link = None if isinstance(item, Redecide) else link_of(item)
        if link is None:
            continue
        known_tag, other_tag = tag(link[0]), tag(link[1])
        if known_tag in suppressed or other_tag in suppressed:
            continue  # forgotten: no link is made, nothing merged
        if not may_merge(merged.get(other_tag), known_tag):
            continue  # merged into another account: its decisions stay that account's
        user = user_for(known_tag)
        user.extra_tags.add(other_tag)
        source, raw = loaded.get(other_tag) or (Profile(), None)
        if user.profile.merge(source, other_tag):
            user.linked = user.changed = True
            marker = anonymous.setdefault(other_tag, BatchUser(source, raw))
            marker.profile.merged_into = known_tag
            marker.changed = True
            merged[other_tag] = known_tag
    for entry_id, item in items:
        if isinstance(item, Redecide):
            user = user_for(merged.get(item.tag, item.tag))
            if item.tag in merged:  # an anonymous id merged: refreshed with its user
                user.extra_tags.add(item.tag)
            user.redecide_due = max(user.redecide_due or 0.0, item.due)
        else:
            user = _owner(item, merged, tag, user_for)
            user.events.append((entry_id, item))
    return users, anonymous


def _owner(event: Event, merged: dict[str, str], tag: Tags, user_for: Any) -> BatchUser:
    other = event.previous_id if event.type == "alias" else event.anonymous_id
    if event.user_id is not None:
        user: BatchUser = user_for(tag(event.user_id))
        user.user_id = event.user_id
        return user
    anon_tag = tag(other) if other is not None else ""
    if anon_tag in merged:
        user = user_for(merged[anon_tag])
        user.extra_tags.add(anon_tag)
        return user
    user = user_for(anon_tag)
    user.anonymous_id = other
    return user
