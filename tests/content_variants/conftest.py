from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONTENT, free_port


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


@pytest.fixture
def origin_server(settings, serve):
    """An app serving the folder origin, so pre-warm GETs succeed; returns its settings."""
    port = free_port()
    settings = dataclasses.replace(settings, cdn_base=f"http://127.0.0.1:{port}")
    serve(settings, port)
    return settings
