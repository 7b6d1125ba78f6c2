"""The publisher's settings (publish, unpublish, the CMS hook)."""

from __future__ import annotations

import pytest

from content_variants.settings import PublisherSettings
from edge_functions.errors import ConfigError


@pytest.mark.parametrize("name,value,words", [
    ("EDGEPICK_CDN_BASE", "cdn.example.com", "EDGEPICK_CDN_BASE"),
    ("EDGEPICK_PREWARM_TIMEOUT_S", "0", "EDGEPICK_PREWARM_TIMEOUT_S"),
    ("EDGEPICK_RENDER_MEMORY_MB", "8", "EDGEPICK_RENDER_MEMORY_MB"),
    ("EDGEPICK_HOOK_SECRET", "short", "EDGEPICK_HOOK_SECRET"),
    ("EDGEPICK_CMS_LOCALE", "english please", "EDGEPICK_CMS_LOCALE"),
])
def test_bad_values_name_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        PublisherSettings.from_env({name: value})


def test_the_publisher_reads_no_worker_variable() -> None:
    PublisherSettings.from_env({"EDGEPICK_WORKER_BATCH": "0"})
