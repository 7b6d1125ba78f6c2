"""Content quality flags on the synthetic bed: a variant whose clicks vanish in the last days
(a broken asset, as users would see it) is flagged with its figures; healthy ones are not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from decision_worker.ingest.event_log import EventLog
from decision_worker.learning import clickless_sample
from decision_worker.learning.content_flags import content_flags, platt
from decision_worker.learning.pipeline import run_training
from decision_worker.learning.registry import Registry
from decision_worker.learning.synthetic import Population, as_logged, log_messages
from object_store.folder import FolderStore
from tests.conftest import Settings

from .test_learning import END, shop_catalog

BROKEN = "h3"
BROKEN_FROM = END - dt.timedelta(days=1.3)  # the test window's days, and some validation


def without_broken_clicks(messages: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for message in messages:
        at = dt.datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
        properties = message.get("properties") or {}
        if message.get("event") == "Variant Clicked" and properties.get("variant") == BROKEN \
                and at >= BROKEN_FROM:
            continue
        yield message


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[EventLog, Registry, Settings]:
    origin = tmp_path_factory.mktemp("flags")
    settings = Settings(origin=f"file://{origin}")
    log = EventLog(FolderStore(settings.origin_dir))
    history = Population(shop_catalog(), 1500, seed=21).history(24, END, dt.timedelta(days=6))
    assert log_messages(log, as_logged(without_broken_clicks(history))).bad_lines == 0
    return log, Registry(FolderStore(origin)), settings


def _trained(logged: tuple[EventLog, Registry, Settings]) -> tuple[Any, dict[str, Any]]:
    log, registry, settings = logged
    report = run_training(log, shop_catalog(), registry, settings.lateness_s, days=7,
                          until=END + dt.timedelta(minutes=5))
    return report, registry.load(report.version)[1]


@pytest.fixture(scope="module")
def flagged(logged):
    return _trained(logged)


def test_a_variant_that_stopped_getting_clicks_is_flagged_with_its_figures(flagged) -> None:
    report, card = flagged
    assert [(f.placement, f.variant) for f in report.content_flags] == [("hero", BROKEN)]
    flag = report.content_flags[0]
    assert flag.clicks < 0.5 * flag.expected_clicks and flag.p_value < 0.001
    assert flag.views > 100
    assert card["content_flags"][0]["variant"] == BROKEN
    assert "hero/h3:" in flag.describe() and "the model expected" in flag.describe()


def test_a_sampled_evaluation_flags_the_same_variant_with_about_its_views(
        logged, flagged, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test window's slates without a click read at a quarter of their number or less,
    each counted for those left out: the same flag, its views and expectation near the
    full evaluation's; the card and the report say what was sampled."""
    full = flagged[0].content_flags[0]
    found = flagged[0].clickless.found
    monkeypatch.setattr(clickless_sample, "KEPT", found // 4)
    report, card = _trained(logged)
    share = (found // 4) / found
    assert report.clickless.found == found and report.clickless.share == pytest.approx(share)
    assert card["examples"]["clickless_share_evaluated"] == pytest.approx(share)
    assert [(f.placement, f.variant) for f in report.content_flags] == [("hero", BROKEN)]
    flag = report.content_flags[0]
    assert flag.clicks == full.clicks
    assert flag.views == pytest.approx(full.views, rel=0.1)
    assert flag.expected_clicks == pytest.approx(full.expected_clicks, rel=0.15)


def test_platt_scaling_recovers_a_known_logistic_map() -> None:
    rng = np.random.default_rng(4)
    scores = rng.normal(size=40_000)
    clicked = rng.random(40_000) < 1 / (1 + np.exp(-(1.5 * scores - 2.0)))
    a, b = platt(scores, clicked)
    assert a == pytest.approx(1.5, abs=0.1) and b == pytest.approx(-2.0, abs=0.1)


def test_no_flags_without_views_to_judge() -> None:
    assert content_flags(lambda rows: rows[:, 0], _empty()) == []


def _empty():
    from decision_worker.learning.examples import Examples

    return Examples(np.zeros((0, 3)), np.zeros(0), np.zeros(0), [], np.zeros(0), [],
                    np.zeros(0), [], [])
