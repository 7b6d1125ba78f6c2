"""Candidates: the eligible variants of each placement, from the manifest, by business rule.

The manifest is the source of truth for what may be shown (a variant is in it only once
its object is uploaded and pre-warmed). On top of that, per user and moment:
- schedule: a variant with `starts_at`/`ends_at` is eligible only inside that window;
- locale: a variant with a locale is eligible only for users of the same language
  (`es-ES` content for `es`, `es-MX`, …); without a locale it is for everyone;
- exclusions: a variant the user has already converted on is not offered again.
The default is always eligible: it is the last resort.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_functions.manifest import parse_document

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


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

    def eligible(self, as_of: FloatArray, languages: list[str | None],
                 converted: list[list[str]]) -> BoolArray:
        """(users, variants) mask of what each user may be shown at their `as_of`."""
        mask = (self.starts[None, :] <= as_of[:, None]) & (as_of[:, None] < self.ends[None, :])
        for v, language in enumerate(self.language):
            if language is not None:
                mask[:, v] &= np.array([u == language for u in languages], dtype=bool)
        index = {key: v for v, key in enumerate(self.keys)}
        for u, keys in enumerate(converted):
            for key in keys:
                found = index.get(key)
                if found is not None:
                    mask[u, found] = False
        mask[:, self.default_index] = True
        return mask


@dataclass(frozen=True)
class Catalog:
    rev: int
    placements: dict[str, PlacementCandidates]
    categories: tuple[str, ...]
    category_of: dict[str, str]  # "placement/variant" → category

    @classmethod
    def from_document(cls, doc: Any) -> Catalog:
        """Build from the manifest document (validated by the edge's own parser first)."""
        manifest = parse_document(doc)
        categories: dict[str, int] = {}
        category_of: dict[str, str] = {}
        placements: dict[str, PlacementCandidates] = {}
        for placement in sorted(manifest.placements):
            entry = doc["placements"][placement]
            variants = tuple(sorted(entry["variants"]))
            metas = [entry["variants"][v] for v in variants]
            keys = tuple(f"{placement}/{v}" for v in variants)
            cats = []
            for key, meta in zip(keys, metas, strict=True):
                category = str(meta.get("category") or "uncategorized")
                category_of[key] = category
                cats.append(categories.setdefault(category, len(categories)))
            default_index = variants.index(entry["default"])
            is_default = np.zeros(len(variants))
            is_default[default_index] = 1.0
            placements[placement] = PlacementCandidates(
                placement, variants, keys, default_index, is_default,
                np.array(cats, dtype=np.int64),
                tuple(_language(m.get("locale")) for m in metas),
                np.array([_time(m.get("starts_at"), -np.inf) for m in metas]),
                np.array([_time(m.get("ends_at"), np.inf) for m in metas]))
        return cls(manifest.rev, placements, tuple(categories), category_of)

    @classmethod
    def from_bytes(cls, raw: bytes | str | None) -> Catalog:
        if raw is None:
            return EMPTY_CATALOG
        return cls.from_document(json.loads(raw))


EMPTY_CATALOG = Catalog(0, {}, (), {})


def _time(value: Any, missing: float) -> float:
    if not isinstance(value, str):
        return missing
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _language(locale: Any) -> str | None:
    if not isinstance(locale, str) or not locale:
        return None
    return locale.replace("_", "-").split("-")[0].lower()
