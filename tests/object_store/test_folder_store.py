"""The folder object store: whole objects, keys inside the folder, durable appends."""

from __future__ import annotations

from pathlib import Path

import pytest

from object_store import from_url
from object_store.folder import FolderStore
from object_store.store import StoreError


def test_put_get_keys_and_append(tmp_path: Path) -> None:
    store = from_url(f"file://{tmp_path}")
    assert isinstance(store, FolderStore) and store.supports_append
    store.put("a/b/one.json", b"{}")
    store.append("logs/x.jsonl", b"1\n")
    store.append("logs/x.jsonl", b"2\n")
    assert store.get("a/b/one.json") == b"{}" and store.get("a/missing") is None
    assert store.get("logs/x.jsonl") == b"1\n2\n"
    assert store.keys("a/") == ["a/b/one.json"] and store.keys("logs/") == ["logs/x.jsonl"]
    assert not list(tmp_path.rglob(".upload-*"))  # no temporary file left beside objects


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", ""])
def test_keys_that_leave_the_folder_are_refused(tmp_path: Path, key: str) -> None:
    store = FolderStore(tmp_path / "store")
    with pytest.raises(StoreError, match="escapes"):
        store.put(key, b"x")
    assert not (tmp_path / "outside").exists()


def test_an_unknown_scheme_is_a_config_error() -> None:
    from edge_functions.errors import ConfigError

    with pytest.raises(ConfigError, match="file://"):
        from_url("ftp://somewhere")
