from __future__ import annotations

from pathlib import Path

import pytest

from edge_functions.errors import ConfigError
from edge_functions.settings import Settings


def test_reads_typed_values_from_the_environment() -> None:
    settings = Settings.from_env({"EDGEPICK_STORE_BUDGET_MS": "7.5", "EDGEPICK_SERVE_ORIGIN": "yes",
                                  "EDGEPICK_DECISION_TTL_S": "60", "EDGEPICK_DATA_DIR": "/tmp/x",
                                  "EDGEPICK_ORIGIN": "s3://bucket/prefix"})
    assert settings.store_budget_ms == 7.5 and settings.serve_origin is True
    assert settings.decision_ttl_s == 60 and settings.data_dir == Path("/tmp/x")
    assert settings.origin_dir is None


@pytest.mark.parametrize("name,value,words", [
    ("EDGEPICK_DECISION_TTL_S", "soon", "EDGEPICK_DECISION_TTL_S"),
    ("EDGEPICK_DECISION_TTL_S", "-1", "EDGEPICK_DECISION_TTL_S"),
    ("EDGEPICK_STORE_BUDGET_MS", "0", "EDGEPICK_STORE_BUDGET_MS"),
    ("EDGEPICK_SERVE_ORIGIN", "maybe", "EDGEPICK_SERVE_ORIGIN"),
    ("EDGEPICK_REDIS_URL", "http://localhost", "EDGEPICK_REDIS_URL"),
    ("EDGEPICK_ORIGIN", "ftp://x", "EDGEPICK_ORIGIN"),
    ("EDGEPICK_ORIGIN", "s3://", "bucket"),
    ("EDGEPICK_CDN_BASE", "cdn.example.com", "EDGEPICK_CDN_BASE"),
    ("EDGEPICK_KEY_SECRET", "short", "EDGEPICK_KEY_SECRET"),
    ("EDGEPICK_HOLDOUT_SHARE", "1.5", "EDGEPICK_HOLDOUT_SHARE"),
    ("EDGEPICK_RANKED_SIZE", "9", "EDGEPICK_RANKED_SIZE"),
    ("EDGEPICK_REDECIDE_ON", "click,hover", "hover"),
    ("EDGEPICK_REFRESH_SHARE", "1", "EDGEPICK_REFRESH_SHARE"),
    ("EDGEPICK_WORKER_BATCH", "0", "EDGEPICK_WORKER_BATCH"),
    ("EDGEPICK_CLAIM_IDLE_S", "-3", "EDGEPICK_CLAIM_IDLE_S"),
    ("EDGEPICK_MAX_ATTEMPTS", "0", "EDGEPICK_MAX_ATTEMPTS"),
    ("EDGEPICK_HTTP_HEADER_TIMEOUT_S", "0", "EDGEPICK_HTTP_HEADER_TIMEOUT_S"),
    ("EDGEPICK_HTTP_BODY_TIMEOUT_S", "-1", "EDGEPICK_HTTP_BODY_TIMEOUT_S"),
    ("EDGEPICK_HTTP_MAX_HEAD_BYTES", "100", "EDGEPICK_HTTP_MAX_HEAD_BYTES"),
])
def test_bad_values_name_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Settings.from_env({name: value})
