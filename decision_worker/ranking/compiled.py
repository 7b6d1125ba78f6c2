"""A compiled predictor for the worker: lleaves turns a LightGBM model into native code
(LLVM), several times faster than LightGBM's own predict on small batches.

Compilation takes seconds, so it happens once per model (cached by the model's checksum
under the data folder) and off the event loop. The compiled model is used only after it
reproduced LightGBM's predictions on probe rows; anything else (lleaves or llvmlite
missing, a compile error, a mismatch) falls back to LightGBM's predict, with a log line.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.features import COLUMN, FEATURES
from decision_worker.ranking.trait_columns import NUMERIC, TraitColumn

log = logging.getLogger("edgepick.compiled")
PROBE_ROWS = 512


def compile_model(model_text: str, sha256: str, cache_dir: Path) -> Any | None:
    """The lleaves model for `model_text`, or None when it cannot be had."""
    try:
        import lleaves
    except ImportError as e:
        log.info("lleaves is not installed (%s): scoring with LightGBM's predict", e)
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    model_path = cache_dir / f"{sha256}.txt"
    model_path.write_text(model_text)
    try:
        model = lleaves.Model(model_file=str(model_path))
        model.compile(cache=str(cache_dir / f"{sha256}.so"))
    except Exception as e:  # noqa: BLE001 - any compiler failure means: use LightGBM
        log.warning("lleaves could not compile the model (%s): using LightGBM's predict", e)
        return None
    return model


def probe_rows(traits: tuple[TraitColumn, ...] = (), seed: int = 11) -> FloatArray:
    """Rows spanning the features' ranges (with `traits`' columns after them), unknown
    categories, missing values and zeros included."""
    rng = np.random.default_rng(seed)
    rows = rng.gamma(1.0, 2.0, size=(PROBE_ROWS, len(FEATURES) + len(traits)))
    for j, trait in enumerate(traits, start=len(FEATURES)):
        if trait.kind == NUMERIC:
            rows[::5, j] = np.nan
        else:
            rows[:, j] = rng.integers(0, len(trait.categories), PROBE_ROWS)
    rows[:, COLUMN["device"]] = rng.integers(0, 4, PROBE_ROWS)
    rows[:, COLUMN["hour"]] = rng.integers(0, 25, PROBE_ROWS)
    rows[:, COLUMN["source"]] = rng.integers(0, 6, PROBE_ROWS)
    rows[:, COLUMN["is_default"]] = rng.integers(0, 2, PROBE_ROWS)
    rows[:, COLUMN["locale_match"]] = rng.integers(0, 2, PROBE_ROWS)
    rows[:, COLUMN["pop_ctr"]] = rng.uniform(0, 0.3, PROBE_ROWS)
    rows[::7] = 0.0
    return rows


def same_predictions(compiled: Any, reference: FloatArray, rows: FloatArray) -> bool:
    mine = np.asarray(compiled.predict(rows, n_jobs=1), dtype=np.float64)
    return bool(np.allclose(mine, reference, rtol=1e-9, atol=1e-12))
