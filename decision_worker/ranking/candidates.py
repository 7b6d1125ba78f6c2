"""Candidates: the eligible variants of each placement, from the manifest, by business rule.

The manifest is the source of truth for what may be shown (a variant is in it only once
its object is uploaded and pre-warmed). On top of that, per user and moment:
- schedule: a variant with `starts_at`/`ends_at` is eligible only inside that window;
- locale: a variant with a locale is eligible only for users of the same language
  (`es-ES` content for `es`, `es-MX`, …); without a locale it is for everyone;
- the placement's policy (placement_policy.py): variants the user already engaged with in
  the ways it names, or viewed as often as its frequency cap, are not offered again.
The default is the edge's fallback for everyone, so its own schedule and locale do not bind
it; the policy's exclusions do (a row does not offer it again to a user who already
consumed it). It is eligible whenever nothing else is: the last resort, so no user is ever
left without a candidate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from decision_worker.ingest.event_time import parse_time
from decision_worker.ranking.arrays import BoolArray, FloatArray, IntArray
from decision_worker.ranking.context import language_of_locale
from decision_worker.ranking.embeddings import DIMENSIONS, variant_embeddings
from decision_worker.ranking.name_codes import name_codes
from decision_worker.ranking.placement_policy import LEGACY_POLICY, PlacementPolicy
from decision_worker.ranking.seen_archive import key_hashes
from edge_functions.manifest import parse_document

if TYPE_CHECKING:
    from decision_worker.ranking.profile import Profile

Exclusions = list[tuple[list[str], np.ndarray]]  # per user: keys from `seen`, archived hashes


@dataclass(frozen=True)
class PlacementCandidates:
    placement: str
    variants: tuple[str, ...]
    keys: tuple[str, ...]  # "placement/variant", as profiles count them
    default_index: int
    is_default: FloatArray  # (V,) 1.0 for the default
    category_index: IntArray  # (V,) into Catalog.categories
    language: tuple[str | None, ...]
    starts: FloatArray  # (V,) unix seconds, -inf when open
    ends: FloatArray  # (V,) unix seconds, +inf when open
    policy: PlacementPolicy = LEGACY_POLICY
    embeddings: np.ndarray = field(  # (V, DIMENSIONS) float32 content (embeddings.py)
        default_factory=lambda: np.zeros((0, DIMENSIONS), dtype=np.float32))
    # The whole placement's "placement/variant" → row of `embeddings` and embeddings,
    # shared by every subset (a user's taste is made of variants retrieval left out).
    content: tuple[dict[str, int], np.ndarray] | None = None
    # (V,) stable codes of the variants' category names (name_codes.py), for the rows
    category_codes: FloatArray = field(default_factory=lambda: np.zeros(0))
    # Derived once, so a placement of 100,000 variants costs no Python loop per decision:
    key_index: dict[str, int] = field(default_factory=dict)  # "placement/variant" → index
    language_codes: dict[str, int] = field(default_factory=dict)  # language → code
    language_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    scheduled: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    localized: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    key_hashes: np.ndarray = field(  # (V,) uint64 CRC-32 of `keys` (seen_archive.py)
        default_factory=lambda: np.zeros(0, dtype=np.uint64))

    @classmethod
    def build(cls, placement: str, variants: tuple[str, ...], default_index: int,
              category_index: IntArray, language: tuple[str | None, ...], starts: FloatArray,
              ends: FloatArray, policy: PlacementPolicy = LEGACY_POLICY,
              embeddings: np.ndarray | None = None,
              content: tuple[dict[str, int], np.ndarray] | None = None,
              hashes: np.ndarray | None = None,
              category_codes: FloatArray | None = None) -> PlacementCandidates:
        keys = tuple(f"{placement}/{v}" for v in variants)
        is_default = np.zeros(len(variants))
        is_default[default_index] = 1.0
        codes: dict[str, int] = {}
        for lang in language:
            if lang is not None:
                codes.setdefault(lang, len(codes))
        language_index = np.array([-1 if lang is None else codes[lang] for lang in language],
                                  dtype=np.int64)
        if embeddings is None:
            embeddings = np.zeros((len(variants), DIMENSIONS), dtype=np.float32)
        key_index = {k: i for i, k in enumerate(keys)}
        return cls(placement, variants, keys, default_index, is_default, category_index,
                   language, starts, ends, policy, embeddings, content or (key_index, embeddings),
                   np.zeros(len(variants)) if category_codes is None else category_codes,
                   key_index, codes,
                   language_index, np.flatnonzero(np.isfinite(starts) | np.isfinite(ends)),
                   np.flatnonzero(language_index >= 0),
                   key_hashes(keys) if hashes is None else hashes)

    def subset(self, indices: IntArray) -> PlacementCandidates:
        """The same placement restricted to `indices` (which must include the default)."""
        picked = [int(i) for i in indices]
        return PlacementCandidates.build(
            self.placement, tuple(self.variants[i] for i in picked),
            picked.index(self.default_index), self.category_index[indices],
            tuple(self.language[i] for i in picked), self.starts[indices], self.ends[indices],
            self.policy, self.embeddings[indices], self.content, self.key_hashes[indices],
            self.category_codes[indices])

    def user_language_codes(self, languages: list[str | None]) -> IntArray:
        """Each user's language as this placement's code (-2: matches no variant)."""
        return np.array([self.language_codes.get(lang, -2) if lang else -2
                         for lang in languages], dtype=np.int64)

    def locale_match(self, languages: list[str | None]) -> BoolArray:
        """(users, variants): the variant targets the user's language."""
        mine = self.user_language_codes(languages)
        match: BoolArray = (self.language_index[None, :] >= 0) & (
            self.language_index[None, :] == mine[:, None])
        return match

    def excluded(self, profiles: list[Profile]) -> Exclusions:
        """Per user, what the policy excludes: keys from `Profile.seen`, hashes from the
        archive of what was engaged with longest ago (`Profile.seen_archive`)."""
        return [(self.policy.excluded(p.seen, self.placement),
                 self.policy.excluded_archived(p.seen_archive)) for p in profiles]

    def eligible(self, clock: FloatArray, languages: list[str | None],
                 excluded: Exclusions) -> BoolArray:
        """(users, variants) mask of what each user may be shown, schedules checked at
        `clock` (the worker's time of deciding, per user), `excluded` keys left out."""
        # Only the variants with a schedule or a locale need checking (few, usually).
        mask = np.ones((len(clock), len(self.variants)), dtype=bool)
        s = self.scheduled
        if len(s):
            mask[:, s] = (self.starts[s][None, :] <= clock[:, None]) & (
                clock[:, None] < self.ends[s][None, :])
        loc = self.localized
        if len(loc):
            mine = self.user_language_codes(languages)
            mask[:, loc] &= self.language_index[loc][None, :] == mine[:, None]
        mask[:, self.default_index] = True  # the fallback: no schedule or locale binds it
        for u, (keys, hashes) in enumerate(excluded):
            for key in keys:
                found = self.key_index.get(key)
                if found is not None:
                    mask[u, found] = False
            if len(hashes):
                mask[u] &= ~np.isin(self.key_hashes, hashes)
        mask[~mask.any(axis=1), self.default_index] = True
        return mask


@dataclass(frozen=True)
class Catalog:
    rev: int
    placements: dict[str, PlacementCandidates]
    categories: tuple[str, ...]
    category_of: dict[str, str]  # "placement/variant" → category
    tags: dict[str, list[list[str]]] = field(default_factory=dict)  # placement → per variant
    # Derived structures other modules build once per catalog (retrieval's index), kept with
    # it so they go when the catalog is replaced.
    caches: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_document(cls, doc: Any) -> Catalog:
        """Build from the manifest document (validated by the edge's own parser first)."""
        manifest = parse_document(doc)
        categories: dict[str, int] = {}
        category_of: dict[str, str] = {}
        placements: dict[str, PlacementCandidates] = {}
        tags: dict[str, list[list[str]]] = {}
        for placement in sorted(manifest.placements):
            entry = doc["placements"][placement]
            variants = tuple(sorted(entry["variants"]))
            metas = [entry["variants"][v] for v in variants]
            tags[placement] = [[str(t) for t in m.get("tags") or []] for m in metas]
            keys = tuple(f"{placement}/{v}" for v in variants)
            cats = []
            for key, meta in zip(keys, metas, strict=True):
                category = str(meta.get("category") or "uncategorized")
                category_of[key] = category
                cats.append(categories.setdefault(category, len(categories)))
            placements[placement] = PlacementCandidates.build(
                placement, variants, variants.index(entry["default"]),
                np.array(cats, dtype=np.int64),
                tuple(language_of_locale(m.get("locale")) for m in metas),
                np.array([_time(m.get("starts_at"), -np.inf) for m in metas]),
                np.array([_time(m.get("ends_at"), np.inf) for m in metas]),
                PlacementPolicy.from_manifest(entry.get("policy")),
                variant_embeddings([category_of[k] for k in keys], tags[placement]),
                category_codes=name_codes([category_of[k] for k in keys]))
        return cls(manifest.rev, placements, tuple(categories), category_of, tags)

    @classmethod
    def from_bytes(cls, raw: bytes | str | None) -> Catalog:
        if raw is None:
            return EMPTY_CATALOG
        return cls.from_document(json.loads(raw))


EMPTY_CATALOG = Catalog(0, {}, (), {})


def _time(value: Any, missing: float) -> float:
    parsed = parse_time(value)
    return missing if parsed is None else parsed.timestamp()

