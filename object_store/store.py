"""The object store interface, and `from_url` for `file://DIR` and `s3://bucket/prefix`.

Every `put` is atomic: a reader sees the whole object or none. Appending is an optional
ability (`supports_append`): a folder appends to a file and fsyncs it; S3 cannot, so its
users write one object per batch instead. Faults are `StoreError`s naming the store and key.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from edge_functions.errors import ConfigError, EdgepickError


class StoreError(EdgepickError):
    """The store refused a read or a write (or could not be reached)."""

    http_status = 503
    error_code = "store_unavailable"
    retry_after_s = 5


class ObjectStore(Protocol):
    supports_append: bool

    def get(self, key: str) -> bytes | None:
        """The object, or None when there is none."""
        ...

    def put(self, key: str, data: bytes, *, content_type: str | None = None,
            cache_control: str | None = None) -> None:
        """Write the whole object atomically (HTTP metadata where the store keeps it)."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted."""
        ...

    def append(self, key: str, data: bytes) -> None:
        """Append durably (only where `supports_append`; else NotImplementedError)."""
        ...

    def describe(self) -> str: ...


def from_url(url: str) -> ObjectStore:
    """`file://DIR` → FolderStore, `s3://bucket/prefix` → S3Store (boto3 imported only
    then)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        from object_store.folder import FolderStore

        return FolderStore(url[len("file://"):])
    if parts.scheme == "s3" and parts.netloc:
        from object_store.s3 import S3Store

        return S3Store(parts.netloc, parts.path.strip("/"))
    raise ConfigError(f"origin {url!r}: use file://DIR or s3://bucket/prefix")
