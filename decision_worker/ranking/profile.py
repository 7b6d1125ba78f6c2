"""The online profile: what the worker remembers about one user, updated event by event.

This module, counters.py, context.py and features.py are the feature definitions: the
worker applies events here as they arrive, and training replays the event log through the
same `apply`. Counts are decayed (counters.py), so the order events arrive in does not
matter; events more than `lateness_s` behind the profile are refused, as are entries already
applied (a redelivered stream entry), so a retry never counts twice.

Privacy is part of applying an event, so the worker and the replay agree on it: a message
that opts the user out (privacy.py) clears everything the profile knows and makes every
later event a no-op until an opt-in that is newer (by event time); a profile marked
`forgotten` (edgepick forget) applies nothing at all.

Every collection is capped, so a profile stays a few kilobytes whatever the user does.

Experiment arms (`arms`: experiment id → "treatment" or "control") are sticky: the worker
stores a user's arm at the first decision that places them in an experiment
(online/experiment_arms.py) and keeps it while the experiment is active. When a known user
absorbs an anonymous profile (`merge`), the known user's stored arms win and arms only the
anonymous profile has are adopted: an anonymous visitor who logs in to an account with no
assignment keeps the arm they were served. So a person (the known user and every anonymous
id merged into them) is served one arm of an experiment from the moment their ids are linked
(docs/experiments.md).
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from decision_worker.ingest.events import Event
from decision_worker.ingest.message_fields import Engagement
from decision_worker.ingest.privacy import OPT_IN, OPT_OUT
from decision_worker.ranking import seen_archive, seen_counts
from decision_worker.ranking.context import (
    TREND_LANGUAGES,
    language_of_locale,
    session_context,
)
from decision_worker.ranking.counters import (
    KINDS,
    DecayedCounts,
    add_to_counter,
    merge_counters,
    new_counts,
)
from decision_worker.ranking.seen_counts import SeenCounts

MAX_CATEGORIES = 32
MAX_VARIANTS = 64
MAX_APPLIED = 32
MAX_TRAITS = 32
MAX_TRAIT_CHARS = 64
MAX_LINKED = 16
MAX_PLACEMENTS = 32
MAX_ARMS = 16
log = logging.getLogger("edgepick.profile")



@dataclass
class Profile:
    version: int = 0  # bumped on every write; the store's compare-and-set checks it
    updated_at: float = 0.0  # latest event time applied
    first_seen: float = 0.0
    sessions: int = 0
    last_session: float = 0.0
    total: DecayedCounts = field(default_factory=new_counts)
    categories: dict[str, DecayedCounts] = field(default_factory=dict)
    variants: dict[str, DecayedCounts] = field(default_factory=dict)  # "placement/variant"
    # "placement/variant" → packed plain counts (seen_counts.py), for the placement
    # policies' exclusions and frequency caps
    seen: SeenCounts = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    traits_at: float = 0.0
    context: dict[str, Any] = field(default_factory=dict)  # device, hour, source, locale
    context_at: float = 0.0
    applied: list[str] = field(default_factory=list)  # stream entry ids, most recent last
    linked: list[str] = field(default_factory=list)  # anonymous tags merged into this one
    merged_into: str | None = None  # set on an anonymous profile once it is merged
    holdout_hash: float | None = None  # the user's bucket, kept for refreshes
    placements: list[str] = field(default_factory=list)  # decided for (forget deletes them)
    opted_out: bool = False  # no data is kept and no decision made while true
    consent_at: float = 0.0  # event time of the latest opt-out / opt-in applied
    forgotten: bool = False  # `edgepick forget`: a marker holding no data about the user
    # Variants pushed out of `seen`, compact, for exclusions only (seen_archive.py)
    seen_archive: str = ""
    arms: dict[str, str] = field(default_factory=dict)  # experiment id → arm (sticky)

    @property
    def is_empty(self) -> bool:
        """No event was ever applied (however often it was written)."""
        return self.updated_at == 0.0

    def dumps(self) -> bytes:
        return orjson.dumps({
            "v": self.version, "u": self.updated_at, "f": self.first_seen, "s": self.sessions,
            "ls": self.last_session, "t": self.total, "c": self.categories, "va": self.variants,
            "sn": self.seen, "tr": self.traits, "tra": self.traits_at, "cx": self.context,
            "cxa": self.context_at, "ap": self.applied, "ln": self.linked,
            "mi": self.merged_into, "h": self.holdout_hash, "pl": self.placements,
            "oo": self.opted_out, "oa": self.consent_at, "fg": self.forgotten,
            "sa": self.seen_archive, "ar": self.arms})

    @classmethod
    def loads(cls, raw: bytes | str | None) -> Profile:
        """A stored profile; a missing or unreadable one starts afresh (and says so)."""
        if raw is None:
            return cls()
        try:
            d = orjson.loads(raw)
            return cls(int(d["v"]), float(d["u"]), float(d["f"]), int(d["s"]), float(d["ls"]),
                       list(d["t"]), dict(d["c"]), dict(d["va"]), _seen_of(d), dict(d["tr"]),
                       float(d["tra"]), dict(d["cx"]), float(d["cxa"]), list(d["ap"]),
                       list(d["ln"]), d["mi"], d["h"], list(d.get("pl", [])),
                       bool(d.get("oo", False)), float(d.get("oa", 0.0)),
                       bool(d.get("fg", False)), str(d.get("sa", "")),
                       {str(k): str(v) for k, v in d.get("ar", {}).items()})
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as e:
            log.warning("profile unreadable, starting afresh: %s", e)
            return cls(version=_version_of(raw))

    # -- applying events -------------------------------------------------------------

    def apply(self, event: Event, entry_id: str, category_of: dict[str, str],
              lateness_s: float, decayed: bool = True) -> str:
        """Apply one event; returns 'applied', 'duplicate', 'late', 'opted_out' (nothing
        kept: the user opted out, or this event opted them out) or 'forgotten'.

        `category_of` maps "placement/variant" to the variant's category (from the manifest).
        `decayed=False` leaves the decayed counters (`total`, `categories`, `variants`) alone
        and keeps everything else: what a training worker that builds none of this user's
        rows still needs (the outcome, the segments, the exclusions; feature_workers.py).
        """
        if self.forgotten:
            return "forgotten"
        if entry_id in self.applied:
            return "duplicate"
        at = event.timestamp.timestamp()
        self._consent(event, at)
        if self.opted_out:
            self._remember_entry(entry_id)
            return "opted_out"
        if self.updated_at and at < self.updated_at - lateness_s:
            return "late"
        self._remember_entry(entry_id)
        self.first_seen = min(self.first_seen, at) if self.first_seen else at
        self.updated_at = max(self.updated_at, at)
        if event.session_start:
            self.sessions += 1
            self.last_session = max(self.last_session, at)
        if (event.session_start or event.type == "page") and at >= self.context_at:
            self.context = session_context(event)
            self.context_at = at
        if event.type == "identify" and event.traits and at >= self.traits_at:
            self.traits = _bounded_traits(event.traits)
            self.traits_at = at
        if event.engagement is not None:
            self._count(event.engagement, at, category_of, decayed)
        return "applied"

    def _consent(self, event: Event, at: float) -> None:
        """An opt-out or opt-in newer than the last one applied (by event time) takes hold."""
        if event.privacy is None or at < self.consent_at:
            return
        self.consent_at = at
        if event.privacy == OPT_OUT:
            self.clear_personal_data()
            self.opted_out = True
        elif event.privacy == OPT_IN:
            self.opted_out = False

    def _remember_entry(self, entry_id: str) -> None:
        self.applied.append(entry_id)
        del self.applied[:-MAX_APPLIED]

    def _count(self, engagement: Engagement, at: float, category_of: dict[str, str],
               decayed: bool = True) -> None:
        kind = KINDS.index(engagement.kind)
        key = f"{engagement.placement}/{engagement.variant}"
        if decayed:
            add_to_counter(self.total, at, kind)
            category = category_of.get(key)
            if category is not None:
                _counter_in(self.categories, category, MAX_CATEGORIES)
                add_to_counter(self.categories[category], at, kind)
            _counter_in(self.variants, key, MAX_VARIANTS)
            add_to_counter(self.variants[key], at, kind)
        if self.seen_archive and key not in self.seen:
            self.seen_archive, counts = seen_archive.pop(self.seen_archive, key)
            if counts is not None:
                self.seen[key] = seen_counts.pack(*counts)
        pushed = seen_counts.add(self.seen, key, kind)
        if pushed is not None:
            self.seen_archive = seen_archive.add(self.seen_archive, *pushed)

    def clear_personal_data(self) -> None:
        """Forget what the user did (opt-out). Kept: the version (for the compare-and-set),
        the applied entry ids (so a redelivered old event is not counted again), the links
        and decided placements (so forget can still find every key), consent state."""
        kept = Profile(version=self.version, applied=self.applied, linked=self.linked,
                       merged_into=self.merged_into, placements=self.placements,
                       opted_out=self.opted_out, consent_at=self.consent_at)
        for f in fields(self):
            setattr(self, f.name, getattr(kept, f.name))

    def decided(self, placements: list[str]) -> None:
        for placement in placements:
            if placement not in self.placements:
                self.placements.append(placement)
        del self.placements[:-MAX_PLACEMENTS]

    def merge(self, anonymous: Profile, anonymous_tag: str) -> bool:
        """Fold an anonymous profile's history into this (known user's) one, once.
        Consent follows the person: the newer signal of the two wins. Experiment arms: the
        known user's win, those only the anonymous profile has are adopted."""
        if anonymous_tag in self.linked:
            return False
        self.linked.append(anonymous_tag)
        del self.linked[:-MAX_LINKED]
        if anonymous.consent_at > self.consent_at:
            self.opted_out, self.consent_at = anonymous.opted_out, anonymous.consent_at
        if self.opted_out:
            self.clear_personal_data()
            return True
        self.adopt_arms(anonymous.arms)
        if anonymous.is_empty or anonymous.opted_out:
            return True
        merge_counters(self.total, anonymous.total)
        for target, source, cap in ((self.categories, anonymous.categories, MAX_CATEGORIES),
                                    (self.variants, anonymous.variants, MAX_VARIANTS)):
            for key, counter in source.items():
                _counter_in(target, key, cap)
                merge_counters(target[key], counter)
        self.sessions += anonymous.sessions
        self.last_session = max(self.last_session, anonymous.last_session)
        self.first_seen = min(x for x in (self.first_seen, anonymous.first_seen) if x) \
            if (self.first_seen or anonymous.first_seen) else 0.0
        self.updated_at = max(self.updated_at, anonymous.updated_at)
        self.seen_archive = seen_archive.merge(self.seen_archive, anonymous.seen_archive)
        for pushed in seen_counts.merge(self.seen, anonymous.seen):
            self.seen_archive = seen_archive.add(self.seen_archive, *pushed)
        if anonymous.context_at > self.context_at:
            self.context, self.context_at = anonymous.context, anonymous.context_at
        if not self.traits and anonymous.traits:
            self.traits, self.traits_at = anonymous.traits, anonymous.traits_at
        self.applied = (anonymous.applied + [a for a in self.applied
                                             if a not in anonymous.applied])[-MAX_APPLIED:]
        return True

    def adopt_arms(self, arms: dict[str, str]) -> None:
        """Experiment arms of a merged profile: ours win, theirs fill what we lack."""
        for experiment, arm in arms.items():
            if experiment not in self.arms and len(self.arms) < MAX_ARMS:
                self.arms[experiment] = arm


def language_of(profile: Profile) -> str | None:
    """The user's language: the session's locale, else a `locale` trait."""
    return profile.context.get("locale") or language_of_locale(profile.traits.get("locale"))


def segments_of(profile: Profile) -> tuple[str, str, str | None]:
    """The segments the user's engagements count in (popularity.engagement_counts): device
    class, traffic source and language (None outside context.TREND_LANGUAGES)."""
    context, language = profile.context, language_of(profile)
    return (str(context.get("device", "unknown")), str(context.get("source", "direct")),
            language if language in TREND_LANGUAGES else None)


def _counter_in(counters: dict[str, DecayedCounts], key: str, cap: int) -> None:
    if key in counters:
        return
    if len(counters) >= cap:  # forget the counter touched longest ago (the first, if tied)
        refs = [counter[0] for counter in counters.values()]
        del counters[next(itertools.islice(counters, refs.index(min(refs)), None))]
    counters[key] = new_counts()


def _seen_of(stored: dict[str, Any]) -> SeenCounts:
    """`seen` of a stored profile; profiles written before it existed held only
    conversions."""
    if "sn" in stored:
        return dict(stored["sn"])
    return {str(k): seen_counts.pack(0, 0, 1) for k in stored.get("cv", [])}


def _bounded_traits(traits: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in traits.items():
        if len(kept) >= MAX_TRAITS:
            break
        if isinstance(value, bool | int | float) and not (isinstance(value, float)
                                                         and not math.isfinite(value)):
            kept[str(key)[:MAX_TRAIT_CHARS]] = value
        elif isinstance(value, str):
            kept[str(key)[:MAX_TRAIT_CHARS]] = value[:MAX_TRAIT_CHARS]
    return kept


def _version_of(raw: bytes | str) -> int:
    try:
        return int(orjson.loads(raw).get("v", 0))
    except (orjson.JSONDecodeError, ValueError, AttributeError, TypeError):
        return 0
