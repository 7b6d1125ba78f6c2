"""Whose moments each feature worker builds: training's rows split by person
(feature_workers.py).

A person is every id the log ties together (`identity.link_of`: an alias, a message with a
userId and another anonymousId), whether or not the replay merges them: a moment's profile
may hold the history of any of them, so one worker replays all of them in full. Each
person belongs to one worker, by a hash of the person's smallest id (the same whatever the
order the ties were met in). The other workers still apply that person's events, without
the decayed counters (`Profile.apply(decayed=False)`): no row of theirs reads them, and
what they do read of the profile (whether an event counts, its segments for the popularity
counts every worker keeps, the exclusions that decide a session's groups) is the same.
"""

from __future__ import annotations

import zlib

from decision_worker.ingest.events import Event
from decision_worker.ranking.identity import link_of


class Persons:
    def __init__(self, events: list[Event], workers: int) -> None:
        self.workers = workers
        self._parent: dict[str, str] = {}
        self._owner: dict[str, int] = {}
        if workers > 1:
            for event in events:
                link = link_of(event)
                if link is not None:
                    self._join(*link)

    def owner(self, user: str) -> int:
        """The worker that builds the rows of `user`'s moments."""
        found = self._owner.get(user)
        if found is None:
            root = self._root(user).encode("utf-8", "surrogatepass")
            found = self._owner[user] = zlib.crc32(root) % self.workers
        return found

    def _root(self, user: str) -> str:
        parent = self._parent
        root = user
        while (up := parent.get(root, root)) != root:
            root = up
        while user != root:  # shorten the path for the next look-up
            parent[user], user = root, parent[user]
        return root

    def _join(self, one: str, other: str) -> None:
        a, b = self._root(one), self._root(other)
        if a != b:  # the smaller id stays the root: the root is the person's smallest id
            self._parent[max(a, b)] = min(a, b)
