"""The serving settings, and the one reader every package's settings use."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_functions.env import CommonSettings
from edge_functions.errors import ConfigError
from edge_functions.settings import ServingSettings


def test_reads_typed_values_from_the_environment() -> None:
    settings = ServingSettings.from_env({
        "EDGEPICK_STORE_BUDGET_MS": "7.5", "EDGEPICK_SERVE_ORIGIN": "yes",
        "EDGEPICK_DATA_DIR": "/tmp/x", "EDGEPICK_ORIGIN": "s3://bucket/prefix"})
    assert settings.store_budget_ms == 7.5 and settings.serve_origin is True
    assert settings.data_dir == Path("/tmp/x")
    assert settings.origin_dir is None


@pytest.mark.parametrize("name,value,words", [
    ("EDGEPICK_STORE_BUDGET_MS", "0", "EDGEPICK_STORE_BUDGET_MS"),
    ("EDGEPICK_STORE_BUDGET_MS", "nan", "EDGEPICK_STORE_BUDGET_MS"),
    ("EDGEPICK_SERVE_ORIGIN", "maybe", "EDGEPICK_SERVE_ORIGIN"),
    ("EDGEPICK_BREAKER_FAILURES", "0", "EDGEPICK_BREAKER_FAILURES"),
    ("EDGEPICK_REDIS_URL", "http://localhost", "EDGEPICK_REDIS_URL"),
    ("EDGEPICK_ORIGIN", "ftp://x", "EDGEPICK_ORIGIN"),
    ("EDGEPICK_ORIGIN", "s3://", "bucket"),
    ("EDGEPICK_KEY_SECRET", "short", "EDGEPICK_KEY_SECRET"),
    ("EDGEPICK_HTTP_HEADER_TIMEOUT_S", "0", "EDGEPICK_HTTP_HEADER_TIMEOUT_S"),
    ("EDGEPICK_HTTP_BODY_TIMEOUT_S", "-1", "EDGEPICK_HTTP_BODY_TIMEOUT_S"),
    ("EDGEPICK_HTTP_MAX_HEAD_BYTES", "100", "EDGEPICK_HTTP_MAX_HEAD_BYTES"),
])
def test_bad_values_name_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        ServingSettings.from_env({name: value})


def test_serving_reads_only_its_own_variables() -> None:
    # Another package's variable, however wrong, does not stop `edgepick serve`.
    settings = ServingSettings.from_env({"EDGEPICK_WORKER_BATCH": "0",
                                         "EDGEPICK_CDN_BASE": "not a url",
                                         "EDGEPICK_HOLDOUT_SHARE": "7"})
    assert not hasattr(settings, "worker_batch") and not hasattr(settings, "cdn_base")


def test_secrets_stay_out_of_repr() -> None:
    settings = CommonSettings.from_env({"EDGEPICK_KEY_SECRET": "a-secret-of-32-characters-long!"})
    assert "a-secret" not in repr(settings)
