"""What training makes of a feature configuration (feature_config.py): the model's spec.

- Categories are learned from the training rows: each declared categorical trait keeps its
  `max_categories` most frequent values (ties by name) among those at least
  `MIN_TRAIT_USERS` distinct users have (a rarer value says more about a person than about
  a segment, and would be written into the model card), the variant's category its
  `MAX_CONTENT_CATEGORIES` most frequent, each declared context signal the values that
  occur; everything else reads as `(other)` (trait_columns.py, feature_spec.py).
- Columns: the base features, the declared signals and traits, minus every column
  with a single value in all training rows. Such a column cannot split anything, and at
  serving it would only ever read values the model never learned from (a device class the
  training window never had), so it is dropped and the card says why.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace

import numpy as np

from decision_worker.errors import ModelError
from decision_worker.learning.examples import Examples
from decision_worker.learning.feature_config import (
    MAX_CONTENT_CATEGORIES,
    FeatureConfig,
    TraitDeclaration,
)
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.feature_spec import CONTENT_SIGNALS, CONTEXT_SIGNALS, FeatureSpec
from decision_worker.ranking.features import COLUMN, ENCODINGS, FEATURES
from decision_worker.ranking.trait_columns import (
    MISSING,
    MISSING_CODE,
    NUMERIC,
    OTHER,
    TraitColumn,
    category_of,
    trait_matrix,
)

MIN_TRAIT_USERS = 10
CONSTANT = "one value in every training row"
ABSENT = "no training row has this trait"
UNDECLARED = "not in the feature configuration"


# A segment's trend column (trending.py) says nothing the overall trend does not when its
# segment is left out or takes one value: then it is left out too.
SEGMENTED_BY = {"ctx_source_trend_30d": "source"}
SAME_AS_OVERALL = "equal to trend_30d in every training row (no user in a trend language)"


def _drop_segment_trends(candidates: tuple[str, ...], rows: np.ndarray,
                         dropped: dict[str, str]) -> None:
    for column, by in SEGMENTED_BY.items():
        if column in candidates and by in dropped and column not in dropped:
            dropped[column] = f"segments by {by}, which is left out: {dropped[by]}"
    language, overall = "ctx_language_trend_30d", "trend_30d"
    if language in candidates and overall in candidates and language not in dropped and \
            np.array_equal(rows[:, candidates.index(language)],
                           rows[:, candidates.index(overall)]):
        dropped[language] = SAME_AS_OVERALL


def fit_spec(config: FeatureConfig, train_set: Examples) -> tuple[FeatureSpec, dict[str, str]]:
    """The spec of a model trained on `train_set`, and the columns left out with why."""
    traits = tuple(_trait_column(d, train_set) for d in config.traits)
    declared = {CONTEXT_SIGNALS[s] for s in config.context} | {
        CONTENT_SIGNALS[s] for s in config.content}
    undeclared = {c for c in (*CONTEXT_SIGNALS.values(), *CONTENT_SIGNALS.values())
                  if c not in declared}
    encodings = {c: _context_categories(c, train_set.x) for c in declared if c in ENCODINGS}
    if "v_category" in declared:
        encodings["v_category"] = (OTHER, *_most_frequent(Counter(train_set.category),
                                                          MAX_CONTENT_CATEGORIES))
    encodings.update({t.name: t.categories for t in traits if t.kind != NUMERIC})
    candidates = tuple(c for c in FEATURES if c not in undeclared) + tuple(t.name for t in traits)
    full = FeatureSpec(candidates, encodings, traits)
    rows = full.model_rows(train_set.x, trait_rows(train_set, traits))
    dropped = {c: UNDECLARED for c in sorted(undeclared)}
    names = {t.name for t in traits}
    for j, column in enumerate(candidates):
        if _constant(rows[:, j]):
            absent = column in names and (bool(np.isnan(rows[0, j])) or (
                column in encodings and rows[0, j] == MISSING_CODE))
            dropped[column] = ABSENT if absent else CONSTANT
    _drop_segment_trends(candidates, rows, dropped)
    kept = tuple(c for c in candidates if c not in dropped)
    if not kept:
        raise ModelError("every feature has one value in all training rows: nothing to learn")
    return FeatureSpec(kept, {c: v for c, v in encodings.items() if c in kept},
                       tuple(t for t in traits if t.name in kept)), dropped


def trait_rows(examples: Examples, traits: tuple[TraitColumn, ...]) -> FloatArray:
    """(rows, traits): each row's trait columns, from its group's traits (the user's)."""
    by_group = trait_matrix(examples.group_traits, traits)
    return np.repeat(by_group, examples.group_sizes, axis=0)


def with_trait_columns(examples: Examples, traits: tuple[TraitColumn, ...]) -> Examples:
    """The examples with `traits`' columns after the base features, in `x` and in every
    kept candidate's rows: what a ranker reading them scores (evaluation)."""
    if not traits:
        return examples
    by_group = trait_matrix(examples.group_traits, traits)
    kept = [None if k is None else
            (np.hstack([k[0], np.repeat(by_group[g:g + 1], len(k[0]), axis=0)]), k[1])
            for g, k in enumerate(examples.candidates)]
    return replace(examples, x=np.hstack([examples.x, trait_rows(examples, traits)]),
                   candidates=kept)


def _trait_column(declared: TraitDeclaration, train_set: Examples) -> TraitColumn:
    if declared.kind == NUMERIC:
        return TraitColumn(declared.trait, NUMERIC, ())
    counts: Counter[str] = Counter()
    users: dict[str, set[str]] = defaultdict(set)
    for g, (traits, size) in enumerate(zip(train_set.group_traits, train_set.group_sizes,
                                           strict=True)):
        category = category_of(traits.get(declared.trait))
        if category is not None:
            counts[category] += size
            users[category].add(train_set.group_user[g] if train_set.group_user else str(g))
    shared = Counter({c: n for c, n in counts.items() if len(users[c]) >= MIN_TRAIT_USERS})
    return TraitColumn(declared.trait, categories=(
        OTHER, MISSING, *_most_frequent(shared, declared.max_categories)))


def _most_frequent(counts: Counter[str], limit: int) -> list[str]:
    return sorted(counts, key=lambda c: (-counts[c], c))[:limit]


def _context_categories(column: str, x: FloatArray) -> tuple[str, ...]:
    codes, counts = np.unique(x[:, COLUMN[column]].astype(np.int64), return_counts=True)
    names = ENCODINGS[column]
    seen = [names[int(c)] for c in codes[np.argsort(-counts, kind="stable")]
            if 0 <= c < len(names)]
    return (OTHER, *seen)


def _constant(column: FloatArray) -> bool:
    missing = np.isnan(column)
    if missing.any():
        return bool(missing.all())
    return len(column) == 0 or bool(column.min() == column.max())
