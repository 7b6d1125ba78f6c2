"""A local folder as the object store: files written beside their target then renamed, so
a reader never sees half an object; appends fsynced before they return."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from object_store.store import StoreError


class FolderStore:
    supports_append = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file of `key`; a key that would leave the folder is refused."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or not key or key.startswith("/"):
            raise StoreError(f"key {key[:200]!r} escapes the store folder {self.root}")
        return path

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as e:
            raise StoreError(f"cannot read {self.path(key)}: {e.strerror}") from e

    def put(self, key: str, data: bytes, *, content_type: str | None = None,
            cache_control: str | None = None) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as e:
            raise StoreError(f"cannot write {path}: {e.strerror}") from e

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self, prefix: str) -> list[str]:
        base = self.path(prefix) if prefix else self.root.resolve()
        if prefix.endswith("/") and not base.is_dir():
            return []  # a folder that is not there (not a scan of its parent)
        folder = base if base.is_dir() else base.parent
        if not folder.is_dir():
            return []
        root = self.root.resolve()
        found = (str(p.relative_to(root)) for p in folder.rglob("*")
                 if p.is_file() and not p.name.startswith("."))
        return sorted(k for k in found if k.startswith(prefix))

    def append(self, key: str, data: bytes) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise StoreError(f"cannot append to {path}: {e.strerror}") from e

    def describe(self) -> str:
        return f"file://{self.root}"
