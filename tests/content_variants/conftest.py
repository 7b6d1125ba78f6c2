from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONTENT


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A writable copy of the example catalog."""
    target = tmp_path / "content"
    shutil.copytree(EXAMPLE_CONTENT, target)
    return target


@pytest.fixture
def write(content: Path) -> Callable[[str, str], Path]:
    def put(relative: str, text: str) -> Path:
        path = content / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return put
