"""The content-addressed variant URL, as pinned for other runtimes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from content_variants.object_keys import variant_object_key
from content_variants.prewarm import Prewarmer

VECTORS = json.loads((Path(__file__).parent.parent / "edge_functions" / "contract_vectors.json")
                     .read_text("utf-8"))


@pytest.mark.parametrize("case", VECTORS["variant_urls"])
def test_variant_urls_match_the_pinned_vectors(case: dict[str, Any]) -> None:
    prewarmer = Prewarmer(case["cdn_base"], 1)
    try:
        key = variant_object_key(case["placement"], case["variant"], case["digest"])
        assert prewarmer.url_for(key) == case["url"]
    finally:
        prewarmer.close()
