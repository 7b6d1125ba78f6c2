"""Identify traits as feature columns: the one rule that turns a profile's traits into
numbers, used by the worker (per batch, once per user) and by training (per decision).

A trait column is categorical or numeric:
- categorical: the value's category (its text; numbers and booleans as JSON writes them)
  looked up in the categories the model learned from its training data (model card's
  `encodings`). Code 0 is `(other)`: a value training never saw, or saw too rarely to be
  among the kept ones; code 1 is `(missing)`: the user has no such trait. Both are
  categories of their own, so a model can tell "has a rare plan" from "has no plan";
- numeric: the value as a float (a number, a boolean, or text that reads as a finite
  number); NaN when missing or unreadable, which LightGBM treats as missing.

Which traits may be columns at all is the privacy allow-list's business (`EDGEPICK_TRAITS`):
a profile only ever holds allow-listed traits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decision_worker.ranking.arrays import FloatArray

OTHER, MISSING = "(other)", "(missing)"
OTHER_CODE, MISSING_CODE = 0, 1
CATEGORICAL, NUMERIC = "categorical", "numeric"
PREFIX = "trait_"


@dataclass(frozen=True)
class TraitColumn:
    """One trait as a model reads it. `categories[i]` is the category of code i
    (categorical only: `(other)` and `(missing)` first, then what training kept)."""

    trait: str
    kind: str = CATEGORICAL
    categories: tuple[str, ...] = (OTHER, MISSING)
    _codes: dict[str, int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_codes", {c: i for i, c in enumerate(self.categories)})

    @property
    def name(self) -> str:
        """The column's name in rows, model cards and LightGBM's feature names."""
        return PREFIX + self.trait

    def value(self, raw: Any) -> float:
        """The column's value for a trait as the profile holds it (None: missing)."""
        if self.kind == NUMERIC:
            return number_of(raw)
        category = category_of(raw)
        if category is None:
            return float(MISSING_CODE)
        return float(self._codes.get(category, OTHER_CODE))


def trait_matrix(traits: Sequence[Mapping[str, Any]],
                 columns: Sequence[TraitColumn]) -> FloatArray:
    """(users, columns): each user's traits (as `Profile.traits` holds them) encoded."""
    out = np.empty((len(traits), len(columns)))
    for u, mine in enumerate(traits):
        for j, column in enumerate(columns):
            out[u, j] = column.value(mine.get(column.trait))
    return out


def category_of(raw: Any) -> str | None:
    """The category a trait value stands for: text as it is, a boolean as true/false, a
    number as JSON writes it (2.0 and 2 are one category); None for missing."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, int | float | str):
        return str(raw)
    return None


def number_of(raw: Any) -> float:
    """A numeric trait's value; NaN when missing or not a finite number."""
    if not isinstance(raw, bool | int | float | str):
        return math.nan
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (ValueError, OverflowError):
        return math.nan
    return value if math.isfinite(value) else math.nan
