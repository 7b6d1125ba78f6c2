"""What a learned model reads: its columns in its order and how each categorical column is
coded. Stored in the model card, so a loaded model is fed exactly what it was trained on.

Rows (features.py) hold every base feature (`FEATURES`: the context signals coded by their
fixed vocabularies, `ENCODINGS`; the variant's category by a stable code of its name)
followed by the model's trait columns (trait_columns.py, coded by the model's own
categories). A model reads a subset of them, by name: training leaves out the signals the
feature configuration did not declare and every column that had a single value in all
training rows. Its categorical columns are coded by the categories it saw in training,
`(other)` for any other (a device class, an hour or a content category training never saw),
so no model reads a code it never learned. `model_rows` selects and recodes: the worker's
scoring and training both call it, and nothing else does.

A card written before feature specs existed (no `columns`) reads its `features` with the
fixed vocabularies: it loads and scores as it did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decision_worker.errors import ModelError
from decision_worker.ranking.arrays import FloatArray, IntArray
from decision_worker.ranking.features import COLUMN, ENCODINGS, FEATURES, NAME_CODED
from decision_worker.ranking.name_codes import NameLookup
from decision_worker.ranking.trait_columns import (
    MISSING,
    NUMERIC,
    OTHER,
    PREFIX,
    TraitColumn,
)

# Signals a feature configuration may declare → the base column each one is.
CONTEXT_SIGNALS: dict[str, str] = {"device": "device", "hour": "hour", "source": "source",
                                   "locale": "locale_match"}
CONTENT_SIGNALS: dict[str, str] = {"category": "v_category"}
Recode = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class FeatureSpec:
    columns: tuple[str, ...]  # what the model reads, in its order (LightGBM's names)
    encodings: Mapping[str, tuple[str, ...]]  # categorical column → category of each code
    traits: tuple[TraitColumn, ...] = ()  # the trait columns rows carry after FEATURES
    _take: IntArray = field(init=False, compare=False, repr=False)
    _recode: tuple[tuple[int, Recode], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = {name: i for i, name in enumerate(self.row_features)}
        unknown = [c for c in self.columns if c not in where]
        if unknown or len(set(self.columns)) != len(self.columns):
            raise ModelError(f"columns {unknown or 'repeated'} are not in the rows the worker "
                             "builds")
        uncoded = [c for c in self.columns if c in NAME_CODED and c not in self.encodings]
        if uncoded:
            raise ModelError(f"no encoding for {', '.join(uncoded)}")
        object.__setattr__(self, "_take", np.array([where[c] for c in self.columns],
                                                   dtype=np.int64))
        object.__setattr__(self, "_recode", tuple(
            (j, recode) for j, c in enumerate(self.columns)
            if (recode := _recoding(c, self.encodings.get(c))) is not None))

    @property
    def row_features(self) -> tuple[str, ...]:
        """The rows' layout: the base features, then the trait columns."""
        return FEATURES + tuple(t.name for t in self.traits)

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c in self.encodings)

    def model_rows(self, rows: FloatArray, trait_rows: FloatArray | None = None) -> FloatArray:
        """(N, len(row_features)) rows → (N, len(columns)), context codes recoded. With
        `trait_rows` (N, len(traits)), `rows` holds the base features only (training: no
        copy of the whole matrix to append a few columns)."""
        if trait_rows is None:
            if not self._recode and len(self._take) == rows.shape[1] and \
                    np.array_equal(self._take, np.arange(len(self._take))):
                return rows
            out = rows[:, self._take]
        else:  # column by column: no temporary copy of the whole matrix
            out = np.empty((len(rows), len(self._take)))
            for j, i in enumerate(self._take):
                out[:, j] = rows[:, i] if i < len(FEATURES) else trait_rows[:, i - len(FEATURES)]
        for j, recode in self._recode:
            out[:, j] = recode(out[:, j])
        return out

    def card(self) -> dict[str, Any]:
        """The model card's part about features (docs/contracts.md)."""
        return {"features": list(self.row_features), "columns": list(self.columns),
                "categorical": list(self.categorical),
                "encodings": {k: list(v) for k, v in self.encodings.items()}}

    @classmethod
    def legacy(cls) -> FeatureSpec:
        """Every base feature of fixed vocabulary: what models read before specs."""
        return cls(tuple(c for c in FEATURES if c not in NAME_CODED),
                   {k: tuple(v) for k, v in ENCODINGS.items()})

    @classmethod
    def from_card(cls, card: Mapping[str, Any], version: str) -> FeatureSpec:
        """The spec a card describes; a ModelError saying what differs from this worker."""
        features = [str(f) for f in card.get("features") or []]
        encodings = {str(k): tuple(str(c) for c in v)
                     for k, v in card.get("encodings", ENCODINGS).items()}
        unknown = [f for f in features if f not in COLUMN and not f.startswith(PREFIX)]
        if unknown or not features:
            raise ModelError(f"model {version} was trained on features this worker does not "
                             f"build: {', '.join(unknown) or 'none listed'}")
        traits = tuple(trait_column(f, encodings.get(f), version) for f in features
                       if f.startswith(PREFIX))
        columns = tuple(str(c) for c in card.get("columns") or features)
        try:
            return cls(columns, encodings, traits)
        except ModelError as e:
            raise ModelError(f"model {version}: {e}") from e


def trait_column(name: str, categories: Sequence[str] | None, version: str) -> TraitColumn:
    """A card's trait column: categorical when it has an encoding, numeric otherwise."""
    trait = name.removeprefix(PREFIX)
    if categories is None:
        return TraitColumn(trait, NUMERIC, ())
    if tuple(categories[:2]) != (OTHER, MISSING):
        raise ModelError(f"model {version}: the encoding of {name} does not start with "
                         f"{OTHER}, {MISSING}")
    return TraitColumn(trait, categories=tuple(categories))


def _recoding(column: str, categories: Sequence[str] | None) -> Recode | None:
    """How a base categorical column's values become the model's codes (None: as they
    are, for numeric columns, trait columns and fixed codes the model reads unchanged)."""
    if column in NAME_CODED and categories is not None:
        return NameLookup(categories, list(categories).index(OTHER) if OTHER in categories
                          else 0)
    if column not in ENCODINGS or categories is None:
        return None
    lut = context_lookup(column, categories)
    if np.array_equal(lut, np.arange(len(lut))):
        return None
    return lambda codes: np.take(lut, codes.astype(np.int64), mode="clip").astype(np.float64)


def context_lookup(column: str, categories: Sequence[str]) -> IntArray:
    """Fixed code of a context signal (features.py) → the model's code for it: the
    category's place in the model's encoding, else that of `(other)`. A model whose
    encoding lacks a category and has no `(other)` cannot read this worker's rows."""
    places = {c: i for i, c in enumerate(categories)}
    other = places.get(OTHER)
    lut = [places.get(name, other) for name in ENCODINGS[column]]
    lost = [name for name, code in zip(ENCODINGS[column], lut, strict=True) if code is None]
    if lost:
        raise ModelError(f"encodes {column} differently from this worker (no code for "
                         f"{', '.join(lost)})")
    return np.array(lut, dtype=np.int64)
