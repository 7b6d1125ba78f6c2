"""What the rollout tests share: a folder registry with production and a new model."""

from __future__ import annotations

from pathlib import Path

import pytest

from decision_worker.learning.registry import Registry
from object_store import from_url


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(from_url(f"file://{tmp_path / 'origin'}"))
    registry.register("lgbm-old", "old model", {})
    registry.promote_rolled_out("lgbm-old", "test set-up")
    registry.register("lgbm-new", "new model", {})
    return registry
