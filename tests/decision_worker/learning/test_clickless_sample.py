"""Evaluation's slates without a click, sampled (clickless_sample.py): every slate with a
click is kept, the click-less ones at the planned rate and weighted by its inverse, the
same in every worker process; the weighted figures estimate the whole window's."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from decision_worker.learning.evaluation import auc
from decision_worker.learning.examples import Examples, build_examples
from decision_worker.learning.replay import parse_log
from decision_worker.learning.synthetic import Population, as_logged
from decision_worker.ranking.features import COLUMN

from .test_learning import END, shop_catalog

KEPT = 150


def _key(examples: Examples, g: int) -> tuple[str, str, float]:
    return examples.group_user[g], examples.group_placement[g], float(examples.group_time[g])


def _clicked(examples: Examples) -> np.ndarray:
    starts = np.concatenate([[0], np.cumsum(examples.group_sizes)]).astype(np.int64)
    return np.array([examples.label[starts[g]:starts[g + 1]].max() > 0
                     for g in range(examples.groups)], dtype=bool)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Examples, Examples, Examples]:
    """The examples of one log in full, and sampled by one and by two processes."""
    catalog = shop_catalog()
    events, _ = parse_log(as_logged(Population(catalog, 300, seed=5).history(
        12, END, dt.timedelta(days=3))))
    cut = float(np.quantile([e.timestamp.timestamp() for e in events], 0.5))

    def build(kept: int | None, workers: int = 1) -> Examples:
        return build_examples(events, catalog, 3600.0, keep_candidates=True,
                              keep_candidates_since=cut, clickless_from=cut,
                              clickless_kept=kept, workers=workers)

    return build(None), build(KEPT), build(KEPT, 2)


def test_every_slate_with_a_click_is_kept_and_the_others_at_the_planned_rate(built) -> None:
    full, sampled, _ = built
    clickless = int((~_clicked(full)).sum())
    assert full.clickless.share == 1.0 and full.group_weight is None
    assert full.clickless.found == clickless  # counted, all kept
    assert sampled.clickless.found == clickless > 4 * KEPT
    share = sampled.clickless.share
    assert share == pytest.approx(KEPT / clickless)
    clicked = _clicked(sampled)
    assert {_key(full, g) for g in np.flatnonzero(_clicked(full))} == {
        _key(sampled, g) for g in np.flatnonzero(clicked)}
    kept = int((~clicked).sum())
    assert abs(kept - KEPT) < 4 * math.sqrt(KEPT * (1 - share)), kept
    weights = sampled.weights()
    assert np.all(weights[clicked] == 1.0) and np.allclose(weights[~clicked], 1 / share)


def test_a_kept_slate_has_the_rows_and_candidates_of_the_full_build(built) -> None:
    full, sampled, _ = built
    where = {_key(full, g): g for g in range(full.groups)}
    starts = [np.concatenate([[0], np.cumsum(e.group_sizes)]).astype(np.int64)
              for e in (full, sampled)]
    for g in range(sampled.groups):
        f = where[_key(sampled, g)]
        mine = sampled.x[starts[1][g]:starts[1][g + 1]]
        assert mine.tobytes() == full.x[starts[0][f]:starts[0][f + 1]].tobytes()
        kept, theirs = sampled.candidates[g], full.candidates[f]
        assert (kept is None) == (theirs is None)
        if kept is not None and theirs is not None:
            assert kept[0].tobytes() == theirs[0].tobytes() and kept[1] == theirs[1]


def test_two_workers_keep_the_same_sample(built) -> None:
    _, one, two = built
    assert one.x.tobytes() == two.x.tobytes()
    assert one.weights().tobytes() == two.weights().tobytes()
    assert one.group_user == two.group_user


def test_weighted_figures_estimate_the_whole_windows(built) -> None:
    """Views and AUC of click prediction (by the popularity column) on the sample, weighted,
    against the same figures on every slate."""
    full, sampled, _ = built
    rows = np.repeat(sampled.weights(), sampled.group_sizes)
    assert len(sampled) < len(full) / 2
    assert rows.sum() == pytest.approx(len(full), rel=0.1)
    score = COLUMN["pop_ctr"]
    whole = auc(full.label > 0, full.x[:, score])
    estimate = auc(sampled.label > 0, sampled.x[:, score], rows)
    assert abs(estimate - whole) < 0.03, (estimate, whole)
