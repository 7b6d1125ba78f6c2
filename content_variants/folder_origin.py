"""A local folder as the origin (the default; nginx or the app serves it under /content/)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from content_variants.errors import OriginError
from content_variants.object_keys import check_object_key


class FolderOrigin:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / check_object_key(key)).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise OriginError(f"origin key {key!r} escapes the origin folder")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, body: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target, then rename: readers never see a partial object.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as e:
            raise OriginError(f"cannot write {path}: {e.strerror}") from e

    def describe(self) -> str:
        return f"file://{self.root}"
