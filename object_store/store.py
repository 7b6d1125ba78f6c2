"""The object store interface.

Every `put` is atomic: a reader sees the whole object or none. Appending is an optional
ability (`supports_append`): a folder appends to a file and fsyncs it; S3 cannot, so its
users write one object per batch instead. Faults are `StoreError`s naming the store and key.
"""

from __future__ import annotations

from typing import Protocol

from edge_functions.errors import EdgepickError


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
