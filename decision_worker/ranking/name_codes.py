"""Stable numeric codes for names (a variant's category) in feature rows.

A catalog numbers its categories in the order it meets them, which changes as content is
published, so that number cannot go into a row a model reads months later. A name's code
is instead a 48-bit hash of it (exact in a float64): the same in every catalog, worker and
replay. Models never read it directly: their spec maps each code to the category's place
in the model's encoding (feature_spec.py), `(other)` for names training never saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from decision_worker.ranking.arrays import FloatArray, IntArray


def name_code(name: str) -> float:
    return float(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=6).digest(), "big"))


def name_codes(names: Sequence[str]) -> FloatArray:
    return np.array([name_code(n) for n in names], dtype=np.float64)


class NameLookup:
    """Codes of names → their places in `names`; any other code → `default`."""

    def __init__(self, names: Sequence[str], default: int) -> None:
        codes = name_codes(names)
        self._order: IntArray = np.argsort(codes, kind="stable")
        self._sorted = codes[self._order]
        self._default = default

    def __call__(self, codes: FloatArray) -> FloatArray:
        if len(self._sorted) == 0:
            return np.full(len(codes), float(self._default))
        i = np.minimum(np.searchsorted(self._sorted, codes), len(self._sorted) - 1)
        found = self._sorted[i] == codes
        return np.where(found, self._order[i], self._default).astype(np.float64)
