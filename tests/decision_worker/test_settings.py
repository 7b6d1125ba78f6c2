"""The decision worker's settings (worker, events API, training)."""

from __future__ import annotations

import pytest

from decision_worker.settings import WorkerSettings
from edge_functions.errors import ConfigError


def test_reads_typed_values_from_the_environment() -> None:
    settings = WorkerSettings.from_env({"EDGEPICK_DECISION_TTL_S": "60",
                                        "EDGEPICK_REDECIDE_ON": "view, conversion",
                                        "EDGEPICK_REDECIDE_SHARE": "0.5"})
    assert settings.decision_ttl_s == 60 and settings.redecide_margin_s == 30
    assert settings.redecide_kinds == {"view", "conversion"}


@pytest.mark.parametrize("name,value,words", [
    ("EDGEPICK_DECISION_TTL_S", "soon", "EDGEPICK_DECISION_TTL_S"),
    ("EDGEPICK_DECISION_TTL_S", "-1", "EDGEPICK_DECISION_TTL_S"),
    ("EDGEPICK_HOLDOUT_SHARE", "1.5", "EDGEPICK_HOLDOUT_SHARE"),
    ("EDGEPICK_RANKED_SIZE", "9", "EDGEPICK_RANKED_SIZE"),
    ("EDGEPICK_REDECIDE_ON", "click,hover", "hover"),
    ("EDGEPICK_REDECIDE_SHARE", "1", "EDGEPICK_REDECIDE_SHARE"),
    ("EDGEPICK_WORKER_BATCH", "0", "EDGEPICK_WORKER_BATCH"),
    ("EDGEPICK_CLAIM_IDLE_S", "-3", "EDGEPICK_CLAIM_IDLE_S"),
    ("EDGEPICK_MAX_ATTEMPTS", "0", "EDGEPICK_MAX_ATTEMPTS"),
    ("EDGEPICK_CLOCK_SKEW_S", "99999999", "EDGEPICK_CLOCK_SKEW_S"),
    ("EDGEPICK_ADMIN_TOKEN", "short", "EDGEPICK_ADMIN_TOKEN"),
    ("EDGEPICK_API_TIMEOUT_S", "0", "EDGEPICK_API_TIMEOUT_S"),
    ("EDGEPICK_EDGE_METRICS_URL", "edge:8000/metrics", "EDGEPICK_EDGE_METRICS_URL"),
    ("EDGEPICK_WORKER_METRICS_URL", "http://w:9101/,ftp://x", "EDGEPICK_WORKER_METRICS_URL"),
    ("EDGEPICK_DASHBOARD_REFRESH_S", "0", "EDGEPICK_DASHBOARD_REFRESH_S"),
])
def test_bad_values_name_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        WorkerSettings.from_env({name: value})


def test_the_worker_reads_no_serving_or_publishing_variable() -> None:
    WorkerSettings.from_env({"EDGEPICK_STORE_BUDGET_MS": "0", "EDGEPICK_CDN_BASE": "nope"})
